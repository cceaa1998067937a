"""Memory settings reach the warehouse sessions: DuckDB's memory_limit (loading and dbt)
and PostgreSQL's planner options and work_mem (dbt's sessions, through libpq's
PGOPTIONS)."""

from __future__ import annotations

import duckdb
import psycopg
import pytest

from flows.warehouse import Warehouse


def test_a_duckdb_warehouse_holds_no_more_memory_than_its_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("CCHC_DUCKDB_MEMORY_LIMIT", "1GB")
    warehouse = Warehouse.from_url(f"duckdb:///{tmp_path / 'w.duckdb'}")
    with warehouse.connect() as conn:
        (limit,) = conn.fetchall("select current_setting('memory_limit')")[0]
    expected = duckdb.connect().execute("set memory_limit = '1GB'").execute(
        "select current_setting('memory_limit')"
    ).fetchone()[0]  # fmt: skip
    assert limit == expected
    assert warehouse.dbt_env()["CCHC_DUCKDB_MEMORY_LIMIT"] == "1GB"  # dbt's profile reads it


def test_dbt_sessions_on_postgresql_get_their_options_and_keep_the_deployments(pg_url, monkeypatch):
    monkeypatch.delenv("CCHC_PG_WORK_MEM", raising=False)
    assert "-c work_mem=64MB" in Warehouse.from_url(pg_url).dbt_env()["PGOPTIONS"]  # default
    monkeypatch.setenv("CCHC_PG_WORK_MEM", "32MB")
    monkeypatch.setenv("PGOPTIONS", "-c statement_timeout=123456")
    env = Warehouse.from_url(pg_url).dbt_env()
    monkeypatch.setenv("PGOPTIONS", env["PGOPTIONS"])  # what dbt's libpq connection reads
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("show work_mem").fetchone()[0] == "32MB"
        assert conn.execute("show enable_mergejoin").fetchone()[0] == "off"
        assert conn.execute("show maintenance_work_mem").fetchone()[0] == "256MB"  # default
        assert conn.execute("show statement_timeout").fetchone()[0] == "123456ms"
        assert conn.execute("show random_page_cost").fetchone()[0] == "1.1"
    # a deployment's own planner costs come after cchc's, so they win
    monkeypatch.setenv("PGOPTIONS", "-c random_page_cost=4")
    monkeypatch.setenv("PGOPTIONS", Warehouse.from_url(pg_url).dbt_env()["PGOPTIONS"])
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("show random_page_cost").fetchone()[0] == "4"


def test_a_memory_setting_that_is_no_size_is_refused(monkeypatch):
    from pydantic import ValidationError

    from flows.settings import settings

    monkeypatch.setenv("CCHC_PG_WORK_MEM", "64MB; drop table x")
    with pytest.raises(ValidationError, match="pg_work_mem"):
        settings()
