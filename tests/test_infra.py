"""infra/: the compose file, .env.example, the Dockerfile and the runbook agree with each
other and with the code (settings, CLI). No Docker engine and no network needed."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import typer.main
import yaml

from flows.cli import app
from flows.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
COMPOSE = INFRA / "docker-compose.yml"
ENV_EXAMPLE = INFRA / ".env.example"
RUNBOOK = INFRA / "RUNBOOK.md"
DOCKERFILE = INFRA / "Dockerfile"
SERVICES = {"warehouse", "prefect-server", "worker", "metabase"}
# ${NAME}, ${NAME:-x}, ${NAME:?x}, $NAME; `$$` is a literal dollar in compose files.
VAR_REF = re.compile(r"(?<!\$)\$(?:\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}|([A-Za-z_][A-Za-z0-9_]*))")


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def env_example() -> list[tuple[str, str, str | None]]:
    """(name, value, the comment line right above it) for every assignment."""
    entries, previous = [], None
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", stripped)
        if match:
            entries.append((match[1], match[2], previous))
        previous = stripped if stripped.startswith("#") and len(stripped) > 2 else None
    return entries


def env_names() -> list[str]:
    return [name for name, _, _ in env_example()]


def referenced_vars(text: str) -> set[str]:
    return {a or b for a, b in VAR_REF.findall(text)}


# --- the compose file -----------------------------------------------------------------


def test_compose_file_parses_and_has_the_four_services():
    services = compose()["services"]
    assert set(services) == SERVICES
    assert services["warehouse"]["image"] == "postgres:15"
    assert "healthcheck" in services["warehouse"]
    assert services["worker"]["build"]["dockerfile"] == "infra/Dockerfile"
    assert services["worker"]["command"][:2] == ["cchc", "serve"]
    assert services["metabase"]["image"].startswith("metabase/metabase:")
    server = services["prefect-server"]
    assert "server" in server["command"] and "0.0.0.0" in server["command"]
    assert server["environment"]["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert server["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"].startswith(
        "postgresql+asyncpg://"
    )


def test_prefect_server_image_is_the_version_the_code_is_locked_to():
    locked = re.search(r"^prefect==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M)
    assert locked, "prefect is not pinned in constraints.txt"
    image = compose()["services"]["prefect-server"]["image"]
    assert image == f"prefecthq/prefect:{locked[1]}-python3.11"


def test_every_variable_the_compose_file_references_is_in_env_example():
    missing = referenced_vars(COMPOSE.read_text(encoding="utf-8")) - set(env_names())
    assert not missing, f"referenced in docker-compose.yml, not in .env.example: {missing}"


def test_env_example_refers_only_to_variables_defined_above():
    defined: set[str] = set()
    for name, value, _ in env_example():
        undefined = referenced_vars(value) - defined
        assert not undefined, f"{name} uses {undefined} before they are defined"
        defined.add(name)


def test_bind_mounts_and_build_context_exist():
    services = compose()["services"]
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (INFRA / source).exists(), f"{name} mounts {source}, which does not exist"
    context = INFRA / services["worker"]["build"]["context"]
    assert (context / services["worker"]["build"]["dockerfile"]).is_file()


def test_init_script_runs_the_bi_script_through_its_mount():
    warehouse = compose()["services"]["warehouse"]
    mounts = dict(v.split(":")[:2] for v in warehouse["volumes"] if v.startswith("."))
    assert mounts.get("./postgres-init") == "/docker-entrypoint-initdb.d"
    scripts = sorted((INFRA / "postgres-init").glob("*.sh"))
    assert scripts, "no init script in infra/postgres-init"
    for script in scripts:
        check = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
    text = "\n".join(s.read_text(encoding="utf-8") for s in scripts)
    paths = re.findall(r"(/\S+/bi_readonly\.sql)", text)
    assert paths, "the init scripts do not run bi_readonly.sql"
    for path in paths:
        host = next(
            (INFRA / src / Path(path).relative_to(dst))
            for src, dst in mounts.items()
            if path.startswith(dst + "/")
        )
        assert host.resolve() == (INFRA / "sql" / "bi_readonly.sql").resolve()
    # What the init script reads from its environment, the compose file must pass it.
    needed = referenced_vars(text) - {"POSTGRES_USER"}
    assert needed <= set(warehouse["environment"]), needed - set(warehouse["environment"])


def test_worker_receives_every_cchc_setting_and_the_prefect_api():
    environment = compose()["services"]["worker"]["environment"]
    wanted = {n for n in env_names() if n.startswith("CCHC_")} | {
        "PREFECT_API_URL",
        "TNMT_API_TOKEN",
    }
    assert wanted <= set(environment), f"not passed to the worker: {wanted - set(environment)}"


def test_dockerfile_copies_only_what_its_ignore_file_lets_through():
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    assert "pip install -c constraints.txt" in dockerfile
    allowed = [
        line[1:].rstrip("/")
        for line in (INFRA / "Dockerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    for sources in re.findall(r"^COPY\s+(.+?)\s+\S+$", dockerfile, re.M):
        for source in sources.split():
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            assert source.rstrip("/") in allowed, f"COPY {source}: excluded from the context"


# --- .env.example ---------------------------------------------------------------------


def test_env_example_has_every_setting_of_the_code_and_no_other_cchc_name():
    prefix = Settings.model_config.get("env_prefix", "")
    fields = {f"{prefix}{name}".upper() for name in Settings.model_fields}
    listed = {n for n in env_names() if n.startswith(prefix.upper())}
    assert fields - listed == set(), f"Settings fields missing from .env.example: {fields - listed}"
    assert listed - fields == set(), f"not a field of flows.settings.Settings: {listed - fields}"


def test_env_example_lines_are_commented_unique_and_hold_no_secret():
    entries = env_example()
    names = [n for n, _, _ in entries]
    assert len(names) == len(set(names)), "a variable is defined twice"
    for name in ("PREFECT_API_URL", "TNMT_API_TOKEN"):
        assert name in names
    for name, value, comment in entries:
        assert comment, f"{name} has no comment line above it"
        if re.search(r"PASSWORD|TOKEN|SECRET|_KEY$", name):
            assert value.startswith("change-me"), f"{name} looks like a real secret: {value!r}"


# --- the runbook ----------------------------------------------------------------------


def runbook_commands() -> list[list[str]]:
    """Every simple command in the runbook's sh blocks, as tokens."""
    blocks = re.findall(r"^\s*```sh\n(.*?)^\s*```", RUNBOOK.read_text("utf-8"), re.M | re.S)
    commands = []
    for block in blocks:
        text = block.replace("\\\n", " ")
        for line in text.splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            lexer.commenters = "#"
            current: list[str] = []
            for token in lexer:
                if token in ("&&", "||", ";", "|", "&"):
                    commands.append(current)
                    current = []
                else:
                    current.append(token)
            commands.append(current)
    return [c for c in commands if c]


def cchc_invocations() -> list[list[str]]:
    """`cchc ...` as the runbook writes it (also inside `docker compose exec worker`);
    `-d cchc` or `-U cchc` are database and user names, not the program."""
    found = []
    for command in runbook_commands():
        for i, token in enumerate(command):
            program = re.fullmatch(r"(?:[\w.]*/)*cchc", token)
            if program and (i == 0 or not command[i - 1].startswith("-")):
                found.append(command[i:])
    return found


CCHC_LINES = cchc_invocations()


def _id(tokens: list[str]) -> str:
    """`cchc backfill --start --end ...`: the command and its flags, not their values."""
    return " ".join(["cchc", *(t for t in tokens[1:] if t.startswith("-") or t.isalpha())])


def test_runbook_has_commands_to_check():
    assert len(CCHC_LINES) >= 5
    subcommands = {line[1] for line in CCHC_LINES if len(line) > 1}
    assert {"run", "backfill"} <= subcommands


def assert_real_cchc_command(tokens: list[str], where: str) -> None:
    command = typer.main.get_command(app)
    path = ["cchc"]
    rest = tokens[1:]
    while hasattr(command, "commands") and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        assert name in command.commands, (
            f"{where} runs `{' '.join(path)} {name}`, which is not a subcommand of "
            f"flows.cli.app (it has: {', '.join(sorted(command.commands))})"
        )
        command = command.commands[name]
        path.append(name)
    options = {"--help"} | {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
    for token in rest:
        if token.startswith("-"):
            flag = token.split("=", 1)[0]
            assert flag in options, (
                f"{where} passes {flag} to `{' '.join(path)}`, which has {sorted(options)}"
            )


@pytest.mark.parametrize("tokens", CCHC_LINES, ids=[_id(t) for t in CCHC_LINES])
def test_runbook_cchc_command_exists_in_cli(tokens):
    assert_real_cchc_command(tokens, "RUNBOOK.md")


def test_worker_command_exists_in_cli():
    """The worker runs `cchc serve` (compose command and the image's CMD)."""
    assert_real_cchc_command(compose()["services"]["worker"]["command"], "docker-compose.yml")
    cmd = re.search(r"^CMD\s+(\[.*\])$", DOCKERFILE.read_text(encoding="utf-8"), re.M)
    assert cmd, "infra/Dockerfile has no CMD"
    assert_real_cchc_command(yaml.safe_load(cmd[1]), "infra/Dockerfile")


def test_runbook_compose_and_psql_lines_name_files_that_exist():
    commands = runbook_commands()
    created = set()
    for command in commands:
        if command[0] == "cp" and len(command) == 3 and (ROOT / command[1]).exists():
            created.add(command[2])
    checked = {"docker compose": 0, "psql": 0}
    for command in commands:
        is_compose = command[:2] == ["docker", "compose"]
        is_psql = "psql" in command
        if not (is_compose or is_psql):
            continue
        checked["docker compose"] += is_compose
        checked["psql"] += is_psql
        files = [
            command[i + 1]
            for i, token in enumerate(command[:-1])
            if token in ("-f", "--file", "--env-file", "<")
        ]
        files += [t for t in command if t.startswith("infra/") and t not in files]
        for name in files:
            assert (ROOT / name).exists() or name in created, (
                f"RUNBOOK.md: {' '.join(command)}\n  names {name}, which does not exist "
                "(and no `cp` in the runbook creates it)"
            )
        if any(f.endswith("bi_readonly.sql") for f in files):
            assert any(t.startswith("bi_role=") for t in command), "bi_role is required"
    assert checked["docker compose"] >= 5 and checked["psql"] >= 2, checked
    up = "docker compose --env-file infra/.env -f infra/docker-compose.yml up -d"
    assert any(" ".join(c).startswith(up) for c in commands)


# --- docker compose itself, where it is installed ----------------------------------------


def test_docker_compose_config_accepts_the_file(tmp_path):
    if shutil.which("docker") is None:
        pytest.skip("the docker CLI is not installed")
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("the docker CLI has no compose plugin here")
    done = subprocess.run(
        ["docker", "compose", "--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
