"""Shared fixtures: one Prefect harness per session, real DuckDB and real PostgreSQL."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

import flows  # noqa: F401  (telemetry off)
from flows import simulate
from flows.warehouse import Warehouse

PG_ADMIN = os.environ.get("CCHC_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect server for the session; its URL, for `cchc` run as a subprocess."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()


@pytest.fixture(scope="session")
def cchc(prefect_harness):
    """The real `cchc` command in a child process, talking to the session's Prefect server."""

    def run(
        *args: str, env: dict[str, str] | None = None, tty: bool = False
    ) -> subprocess.CompletedProcess:
        """With `tty`, the command runs on a pseudo-terminal (util-linux `script`), as a
        person at a console would see it: stdout then holds stdout and stderr together."""
        script = Path(sys.executable).with_name("cchc")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "flows.cli"]
        environment = {**os.environ, "PREFECT_API_URL": prefect_harness, **(env or {})}
        command = [*command, *args]
        if tty:
            environment["COLUMNS"] = "120"
            command = ["script", "--quiet", "--return", "--command", shlex.join(command),
                       "/dev/null"]  # fmt: skip
        return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=900)

    return run


def _postgres_available() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=5):
            return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    problem = _postgres_available()
    if problem:
        if os.environ.get("CCHC_REQUIRE_POSTGRES") or os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required and not reachable at {PG_ADMIN}: {problem}")
        pytest.skip(f"PostgreSQL not reachable: {problem}")
    name = f"cchc_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def duckdb_url(tmp_path):
    return f"duckdb:///{tmp_path / 'warehouse.duckdb'}"


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse_url(request, tmp_path):
    """Each warehouse in turn: the same test on the embedded default and on PostgreSQL."""
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    return request.getfixturevalue("pg_url")


# -- the sample district, run twice on each warehouse, shared by the modules that read it


@pytest.fixture(scope="session")
def sample_district(tmp_path_factory):
    return simulate.generate_district(tmp_path_factory.mktemp("an_lao"), seed=7)


@pytest.fixture(scope="session")
def module_pg_url():
    name = f"cchc_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    yield f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session")
def runs(cchc, sample_district, module_pg_url, tmp_path_factory):
    """Each warehouse gets the sample twice; snapshots after each run. Shared by every
    module that reads the sample district's results: nothing may change these warehouses."""
    from tests.test_pipeline import AS_OF, snapshot

    duck = f"duckdb:///{tmp_path_factory.mktemp('duck') / 'warehouse.duckdb'}"
    out = {}
    for kind, url in (("duckdb", duck), ("postgres", module_pg_url)):
        reports = tmp_path_factory.mktemp(f"reports_{kind}")
        args = ["run", "--sources", str(sample_district), "--warehouse", url,
                "--as-of", AS_OF, "--report-dir", str(reports)]  # fmt: skip
        first = cchc(*args, tty=kind == "duckdb")  # the console's progress bars, once
        assert first.returncode == 0, (first.stderr or first.stdout)[-3000:]
        warehouse = Warehouse.from_url(url)
        after_first = snapshot(warehouse)
        second = cchc(*args)
        assert second.returncode == 0, second.stderr[-3000:]
        out[kind] = {
            "output": (first.stdout, second.stdout + second.stderr),
            "warehouse": warehouse,
            "first": after_first,
            "second": snapshot(warehouse),
            "reports": reports,
        }
    return out


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Fail loudly if xdist's loadgroup stops grouping (it did, silently, with pytest 9.2:
    pytest-dev/pytest-xdist#1386); the shared runs would then happen once per worker."""
    if not getattr(config.option, "loadgroup", False):
        return
    ungrouped = [
        i.nodeid for i in items if i.get_closest_marker("xdist_group") and "@" not in i.nodeid
    ]
    if ungrouped:
        reason = (f"--dist loadgroup did not group {ungrouped[0]} (and {len(ungrouped) - 1} "
                  "more); see the pytest pin in pyproject.toml")  # fmt: skip
        sys.stderr.write(f"\n{reason}\n")  # a worker's error reaches the controller garbled
        raise pytest.UsageError(reason)
