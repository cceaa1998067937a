"""Shared fixtures: one Prefect harness per session, real DuckDB and real PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

import flows  # noqa: F401  (telemetry off)

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

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        script = Path(sys.executable).with_name("cchc")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "flows.cli"]
        environment = {**os.environ, "PREFECT_API_URL": prefect_harness, **(env or {})}
        return subprocess.run(
            [*command, *args], capture_output=True, text=True, env=environment, timeout=900
        )

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
