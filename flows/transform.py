"""dbt: build the models of `dbt_project/` against the warehouse."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from flows import failpoints, progress
from flows.raw_schema import RAW_SCHEMA as RAW
from flows.warehouse import Warehouse

DBT_PROJECT = Path(__file__).resolve().parents[1] / "dbt_project"


def project_dir() -> Path:
    """The dbt project: the shipped one, or a deployment's copy (CCHC_DBT_PROJECT_DIR)."""
    from flows.settings import Settings

    return Settings().dbt_project_dir or DBT_PROJECT


# Marts dbt builds in the staging schema; publish copies them into `marts`.
BUILD_SCHEMA = "cchc_build"
MARTS = [
    "dim_unit",
    "fct_dossier",
    "dossier_timeliness",
    "dossier_due_date_audit",
    "task_overdue_by_department",
    "digitization",
    "service_index_766",
    "apology_letters",
    "apology_letters_by_unit",
    "dossier_timeliness_current_units",
    "digitization_current_units",
    "apology_letters_by_unit_current_units",
]


class TransformError(RuntimeError):
    """dbt did not build every model and test."""


@contextmanager
def environment(values: dict[str, str]):
    """Environment variables set for the block, restored after (dbt reads them at invoke)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def run_dbt(
    warehouse: Warehouse,
    args: list[str],
    variables: dict[str, str],
    work_dir: Path | None = None,
) -> list[dict]:
    """Run one dbt command; return its node results, raise TransformError if any failed."""
    from dbt.cli.main import dbtRunner

    own_folder = work_dir is None  # a night's: removed when dbt succeeded
    work = Path(work_dir or tempfile.mkdtemp(prefix="cchc-dbt-"))
    project = project_dir()
    common = [
        "--project-dir", str(project),
        "--profiles-dir", str(project),
        "--target", warehouse.dbt_target,
        "--target-path", str(work / "target"),
        "--log-path", str(work / "logs"),
        "--no-use-colors",
        "--quiet",
        "--log-level-file", "warn",  # debug file logging costs a tenth of a build
    ]  # fmt: skip
    env = {**warehouse.dbt_env(), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    # an own folder's manifest.json and run_results.json (0.2 s) would go unread; its logs
    # are kept when dbt failed and say why
    artifacts = ["--no-write-json"] if own_folder else []
    with environment(env):
        manifest = _manifest(warehouse, env, common)
        outcome = dbtRunner(manifest=manifest, callbacks=[_on_event]).invoke(
            [*args, *common, *artifacts, "--vars", json.dumps(variables)]
        )
    if warehouse.kind == "duckdb":
        _release_duckdb()
    nodes = []
    for r in getattr(outcome.result, "results", None) or []:
        nodes.append(
            {
                "node": r.node.unique_id,
                "status": str(r.status),
                "message": None if r.message is None else str(r.message),
                "failures": getattr(r, "failures", None),
                "seconds": r.execution_time,
                # a test's model, for the checks table
                "model": (getattr(r.node, "attached_node", None) or "").split(".")[-1],
            }
        )
    if outcome.success:
        if own_folder:  # some 5 MB a night: kept only when it failed
            shutil.rmtree(work, ignore_errors=True)
    else:
        failed = [n for n in nodes if n["status"] not in ("success", "pass", "skipped")]
        if failed:
            first = failed[0]
            detail = f"{first['node']}: {first['status']}"
            if first["message"]:
                detail += f" ({str(first['message']).splitlines()[0][:200]})"
            reason = f"{len(failed)} dbt node(s) failed, first {detail}"
        else:
            reason = str(outcome.exception or "dbt failed").splitlines()[0][:300]
        raise TransformError(f"dbt {args[0]} failed: {reason} [logs: {work / 'logs'}]")
    return nodes


def _on_event(event) -> None:
    name = event.info.name
    if name == "ConcurrencyLine":  # dbt's "Concurrency: n threads", with the node count
        progress.total(event.data.node_count, "dbt nodes")
    elif name == "NodeFinished":
        progress.advance()
        failpoints.hit("dbt.node_finished")  # tests kill a build part-way through
        failpoints.hit(f"dbt.finished.{event.data.node_info.node_name}")  # ... or after a node


def _release_duckdb() -> None:
    """dbt-duckdb keeps the database file open for the life of the process; DuckDB lets
    one process open a file, so the next step's (or the next run's) open would fail."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager as Manager

    with Manager._LOCK:
        if Manager._ENV is not None:
            Manager._ENV.close()
            Manager._ENV = None


_MANIFESTS: dict[tuple, object] = {}


def _manifest(warehouse: Warehouse, env: dict[str, str], common: list[str]):
    """The parsed project, once per process and warehouse (parsing costs seconds; a
    backfill runs dbt once a day). Run variables are applied when a command runs."""
    from dbt.cli.main import dbtRunner

    key = (warehouse.dbt_target, tuple(sorted(env.items())), _project_digest())
    if key not in _MANIFESTS:
        # dbt's partial parsing, kept between processes: a night is a new process, and
        # a full parse costs it 8 s against 3.5 s. dbt itself checks the saved state
        # against the project files, the profile and the variables.
        saved = _parse_cache() / (hashlib.sha256(repr(key).encode()).hexdigest()[:24] + ".msgpack")
        target = Path(common[common.index("--target-path") + 1])
        target.mkdir(parents=True, exist_ok=True)
        if saved.exists():
            shutil.copyfile(saved, target / "partial_parse.msgpack")
        outcome = dbtRunner().invoke(["parse", *common])
        if not outcome.success:
            reason = str(outcome.exception or "dbt parse failed").splitlines()[0][:300]
            raise TransformError(f"dbt parse failed: {reason}")
        _MANIFESTS[key] = outcome.result
        with contextlib.suppress(OSError):  # a cache: never a reason to fail a night
            partial = saved.with_suffix(f".{os.getpid()}.tmp")
            shutil.copyfile(target / "partial_parse.msgpack", partial)
            partial.replace(saved)  # atomic: a concurrent run reads the old or the new
    return _MANIFESTS[key]


def _parse_cache() -> Path:
    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cchc" / "dbt"
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def _project_digest() -> str:
    """The dbt project's files, hashed (generated folders left out)."""
    project, digest = project_dir(), hashlib.sha256()
    for path in sorted(project.rglob("*")):
        if path.is_file() and not {"target", "logs"} & set(path.relative_to(project).parts):
            digest.update(path.relative_to(project).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def build(
    warehouse: Warehouse,
    as_of: str,
    run_id: str,
    work_dir: Path | None = None,
    *,
    full_refresh: bool = False,
) -> list[dict]:
    """Seeds, models and data tests; unit tests check code, so the test suite runs them.

    Incremental models take only what changed since the last build, unless the dbt
    project or the reference data changed since, the as-of date went back (closed
    periods reopen), or `full_refresh`: then everything is rebuilt, so a night's result
    never depends on how it was reached.
    """
    warehouse.index_raw()  # after the loads: one sorted build, not one insert per row
    fingerprint = _fingerprint(warehouse)
    with warehouse.connect() as conn:
        last = conn.fetchall(f"select fingerprint, as_of from {RAW}.build_state")
    earlier = bool(last) and (last[0][1] is None or str(last[0][1])[:10] > as_of)
    whole = full_refresh or not last or last[0][0] != fingerprint or earlier
    if whole and last:
        # A whole build that stops part-way is done whole again: the models it rebuilt
        # have forgotten what the next night's incremental models would need (the gone
        # dossiers of macros/gone_dossiers.sql, the classification's ledger).
        with warehouse.transaction() as conn:
            conn.execute(f"delete from {RAW}.build_state")
        last = []
    nodes = run_dbt(
        warehouse,
        [
            "build",
            "--exclude-resource-type",
            "unit_test",
            # seeds are project files: unchanged project, unchanged seed tables
            *(["--full-refresh"] if whole else ["--exclude-resource-type", "seed"]),
        ],  # fmt: skip
        {"as_of": as_of, "run_id": run_id},
        work_dir,
    )
    _verified(warehouse)
    if last and last[0][0] == fingerprint and str(last[0][1])[:10] == as_of:
        return nodes  # a rerun on the same project, reference data and day writes nothing
    with warehouse.transaction() as conn:
        conn.execute(f"delete from {RAW}.build_state")
        conn.execute(
            f"insert into {RAW}.build_state (fingerprint, run_id, built_at, as_of) "
            "values (%s, %s, %s, %s)",
            [fingerprint, run_id, datetime.now(), as_of],
        )
    return nodes


def _verified(warehouse: Warehouse) -> None:
    """Every data test passed: what the builds wrote is verified, so the next night's
    tests need not read it again (dbt_project/macros/unverified_rows.sql)."""
    with warehouse.transaction() as conn:
        for schema, table in conn.fetchall(
            "select table_schema, table_name from information_schema.tables "
            "where table_name like %s escape '!'",
            ["%!_!_unverified"],
        ):
            conn.execute(f'delete from "{schema}"."{table}"')


def _fingerprint(warehouse: Warehouse) -> str:
    """The dbt project's files and the reference data's versions, hashed together."""
    digest = hashlib.sha256(_project_digest().encode())
    with warehouse.connect() as conn:
        for row in conn.fetchall(
            f"select table_name, content_sha256 from {RAW}.reference_versions order by 1"
        ):
            digest.update("|".join(row).encode())
    return digest.hexdigest()
