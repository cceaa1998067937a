"""infra/sql/bi_readonly.sql on the real PostgreSQL: the BI login reads every mart, and
nothing else, and keeps reading a mart that publish drops and re-creates."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import errors, sql

from tests.conftest import FIXTURES, PG_ADMIN

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SCRIPT = Path(__file__).resolve().parents[1] / "infra" / "sql" / "bi_readonly.sql"
SOURCES = FIXTURES / "bad_rows" / "sources.yml"
AS_OF = "2025-06-30"
SYSTEM_SCHEMAS = ("marts", "pg_catalog", "information_schema", "pg_toast")


@dataclass
class Roles:
    owner: str
    owner_url: str
    bi: str
    bi_url: str
    bi_password: str


def _url_as(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    netloc = f"{user}:{password}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture
def roles(pg_url):
    """A non-superuser owner of the test database (what `cchc run` connects as in
    production) and the name of the BI role; both dropped with the database."""
    if shutil.which("psql") is None:
        pytest.fail("psql is needed to apply infra/sql/bi_readonly.sql and is not on PATH")
    suffix = uuid.uuid4().hex[:8]
    owner, bi = f"cchc_owner_{suffix}", f"cchc_bi_{suffix}"
    dbname = urlsplit(pg_url).path.lstrip("/")
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(
            sql.SQL("create role {} login createrole password {}").format(
                sql.Identifier(owner), sql.Literal("owner-pw")
            )
        )
        conn.execute(
            sql.SQL("alter database {} owner to {}").format(
                sql.Identifier(dbname), sql.Identifier(owner)
            )
        )
    yield Roles(
        owner, _url_as(pg_url, owner, "owner-pw"), bi, _url_as(pg_url, bi, "bi-pw"), "bi-pw"
    )
    # Roles are cluster-wide: drop the database (their grants and objects) first.
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname))
        )
        for role in (bi, owner):
            conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(role)))


def apply_script(url: str, *variables: str, env: dict[str, str] | None = None):
    args = ["psql", "-X", "-q", url, "-f", str(SCRIPT)]
    for v in variables:
        args[2:2] = ["-v", v]
    return subprocess.run(
        args, capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}
    )


def tables(url: str, where: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select schemaname || '.' || tablename from pg_tables where " + where + " order by 1"
        ).fetchall()
    return [r[0] for r in rows]


def counts(url: str, names: list[str]) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {n: conn.execute(f"select count(*) from {n}").fetchone()[0] for n in names}


def assert_denied(conn: psycopg.Connection, statement: str, error=errors.InsufficientPrivilege):
    with pytest.raises(error):
        conn.execute(statement)


def role_row(name: str) -> dict:
    with psycopg.connect(PG_ADMIN) as conn:
        cur = conn.execute(
            "select rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolinherit, "
            "rolreplication, rolbypassrls, rolpassword from pg_authid where rolname = %s",
            [name],
        )
        row = cur.fetchone()
        assert row is not None, f"role {name} was not created"
        return dict(zip([d.name for d in cur.description], row, strict=True))


def test_bi_role_reads_every_mart_and_nothing_else_across_republish(cchc, roles, tmp_path):
    run = ["run", "--sources", str(SOURCES), "--warehouse", roles.owner_url,
           "--as-of", AS_OF, "--report-dir", str(tmp_path / "reports")]  # fmt: skip
    first = cchc(*run)
    assert first.returncode == 0, first.stderr[-3000:]

    done = apply_script(roles.owner_url, f"bi_role={roles.bi}", f"bi_password={roles.bi_password}")
    assert done.returncode == 0, done.stderr
    # Idempotent, and the password may come from the environment instead.
    first_hash = role_row(roles.bi)["rolpassword"]
    again = apply_script(roles.owner_url, f"bi_role={roles.bi}", env={"BI_PASSWORD": "rotated"})
    assert again.returncode == 0, again.stderr
    role = role_row(roles.bi)
    assert role["rolpassword"].startswith("SCRAM-SHA-256$"), "password stored in clear"
    assert role["rolpassword"] != first_hash, "BI_PASSWORD did not change the password"
    assert role["rolcanlogin"] and not role["rolinherit"]
    assert not any(role[k] for k in ("rolsuper", "rolcreatedb", "rolcreaterole",
                                     "rolreplication", "rolbypassrls"))  # fmt: skip
    assert apply_script(roles.owner_url, f"bi_role={roles.bi}",
                        f"bi_password={roles.bi_password}").returncode == 0  # fmt: skip

    marts = tables(roles.owner_url, "schemaname = 'marts'")
    for expected in ("marts.dossier_timeliness", "marts.dim_unit", "marts.fct_dossier",
                     "marts.dossier_due_date_audit", "marts.pipeline_runs"):  # fmt: skip
        assert expected in marts
    owner_counts = counts(roles.owner_url, marts)
    assert owner_counts["marts.dossier_timeliness"] > 0 and owner_counts["marts.dim_unit"] > 0
    assert counts(roles.bi_url, marts) == owner_counts

    with psycopg.connect(roles.owner_url, autocommit=True) as conn:
        conn.execute("create table public.secret_notes as select 1 as x")
    hidden = tables(roles.owner_url, f"schemaname not in {SYSTEM_SCHEMAS!r}")
    for expected in ("raw.dossier_log", "raw.loaded_files", "raw.quarantine",
                     "public.secret_notes"):  # fmt: skip
        assert expected in hidden
    assert any(t.startswith("cchc_build.") for t in hidden)

    with psycopg.connect(roles.bi_url, autocommit=True) as conn:
        assert conn.execute("show default_transaction_read_only").fetchone()[0] == "on"
        assert conn.execute("show statement_timeout").fetchone()[0] == "5min"
        # The default session refuses writes even before privileges are looked at ...
        assert_denied(conn, "delete from marts.dim_unit", errors.ReadOnlySqlTransaction)
        for name in hidden:
            assert_denied(conn, f"select * from {name} limit 1")
        # ... and privileges hold once a tool turns read-only off.
        conn.execute("set default_transaction_read_only = off")
        for statement in (
            "insert into marts.pipeline_runs select * from marts.pipeline_runs",
            "update marts.dim_unit set unit_name = unit_name",
            "delete from marts.dossier_timeliness",
            "truncate marts.fct_dossier",
            "drop table marts.dim_unit",
            "create table marts.bi_scratch (x int)",
            "create table public.bi_scratch (x int)",
            "create temporary table bi_scratch (x int)",
            "create schema bi_scratch",
            "insert into raw.loaded_files select * from raw.loaded_files",
        ):
            assert_denied(conn, statement)
    assert counts(roles.owner_url, marts) == owner_counts

    # Publish re-creates a mart whose columns changed (here: one that is gone); the
    # default privileges must cover the new table without rerunning the script.
    with psycopg.connect(roles.owner_url, autocommit=True) as conn:
        conn.execute("drop table marts.dossier_due_date_audit")
    second = cchc(*run)
    assert second.returncode == 0, second.stderr[-3000:]
    marts_after = tables(roles.owner_url, "schemaname = 'marts'")
    assert "marts.dossier_due_date_audit" in marts_after
    assert counts(roles.bi_url, marts_after) == counts(roles.owner_url, marts_after)


def test_bi_script_before_first_run_as_superuser_for_the_owner(roles):
    """The compose init's way: a superuser runs it for the owner on an empty database."""
    admin_url = _admin_db_url(roles.owner_url)
    missing = apply_script(admin_url, env={"BI_PASSWORD": roles.bi_password})
    assert missing.returncode != 0 and "bi_role" in missing.stderr
    no_password = apply_script(admin_url, f"bi_role={roles.bi}", env={"BI_PASSWORD": ""})
    assert no_password.returncode != 0 and "bi_password" in no_password.stderr
    with psycopg.connect(PG_ADMIN) as conn:
        row = conn.execute("select 1 from pg_roles where rolname = %s", [roles.bi]).fetchone()
        assert row is None, "a failed run of the script left a role behind"
    done = apply_script(
        admin_url,
        f"bi_role={roles.bi}",
        f"owner_role={roles.owner}",
        env={"BI_PASSWORD": roles.bi_password},
    )
    assert done.returncode == 0, done.stderr
    with psycopg.connect(roles.owner_url, autocommit=True) as conn:
        owner = conn.execute(
            "select nspowner::regrole::text from pg_namespace where nspname = 'marts'"
        ).fetchone()
        assert owner == (roles.owner,), "marts must belong to the role that publishes"
        # What the first publish will do: create marts as the owner.
        conn.execute("create table marts.first_mart as select 42 as answer")
        conn.execute("create table public.not_for_bi as select 1 as x")
    with psycopg.connect(roles.bi_url, autocommit=True) as conn:
        assert conn.execute("select answer from first_mart").fetchone() == (42,)
        assert_denied(conn, "select * from public.not_for_bi")


def _admin_db_url(owner_url: str) -> str:
    """The superuser's URL to the same database."""
    admin = urlsplit(PG_ADMIN)
    return urlunsplit(admin._replace(path=urlsplit(owner_url).path))
