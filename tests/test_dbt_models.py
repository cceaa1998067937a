"""The dbt project end to end: `dbt build` on DuckDB and on PostgreSQL, numbers checked by hand.

A handful of hand-made dossiers in one district (313: communes 11629 and 11632,
department 313-TNMT) plus one dossier of a unit nobody registered, one task and
two outgoing documents. Both warehouses must build every seed, model, data test
and unit test, and give the same rows for every mart and every staged log.
"""

from __future__ import annotations

import csv
import json
import os
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import psycopg
import pytest

from flows.raw_schema import create_statements
from flows.transform import environment as _env

DBT_PROJECT = Path(__file__).resolve().parents[1] / "dbt_project"
AS_OF = "2025-06-30"
MARTS = {
    "dim_unit": "unit_code, valid_from",
    "fct_dossier": "dossier_key",
    "dossier_timeliness": "period_grain, period_start, unit_code",
    "dossier_due_date_audit": "dossier_key",
    "task_overdue_by_department": "period_grain, period_start, department_code",
    "digitization": "period_grain, period_start, unit_code",
    "service_index_766": "period_grain, period_start, unit_code, indicator_code",
    "apology_letters": "dossier_key",
    "apology_letters_by_unit": "period_grain, period_start, unit_code",
    "dossier_timeliness_current_units": "period_grain, period_start, unit_code",
    "digitization_current_units": "period_grain, period_start, unit_code",
    "apology_letters_by_unit_current_units": "period_grain, period_start, unit_code",
}
# Staging views of the raw logs that have no mart yet: compared between the engines too.
STAGED = ["stg_raw__task_log", "stg_raw__document_log"]

# -- raw rows ---------------------------------------------------------------------------

ADMIN_UNITS = [
    # unit_code, unit_name, unit_type, parent, province, valid_from, valid_to, successor
    ("31", "Thành phố Hải Phòng", "province", None, "31", None, None, None),
    ("313", "Quận Hải An", "district", "31", "31", None, date(2025, 6, 30), None),
    ("11629", "Phường Đông Hải 1", "commune", "313", "31", None, date(2025, 6, 30), "11629"),
    # the same commune kept its code through the 2025 reorganisation: a second version
    ("11629", "Phường Đông Hải", "commune", "31", "31", date(2025, 7, 1), None, None),
    ("11632", "Phường Đông Hải 2", "commune", "313", "31", None, date(2025, 6, 30), None),
]

REGISTERED_UNITS = [
    # a department under the district, and a correction of an official commune's name
    ("313-TNMT", "Phòng Tài nguyên và Môi trường", "department", "313"),
    ("11632", "Phường Đông Hải Hai", "", ""),
]

# Vietnamese public holidays of 2025 (none falls in May or June); Saturday 26/4 was worked.
HOLIDAYS_2025 = {
    date(2025, 1, 1), *(date(2025, 1, d) for d in range(25, 32)), date(2025, 2, 1),
    date(2025, 2, 2), date(2025, 4, 7), date(2025, 4, 30), date(2025, 5, 1), date(2025, 5, 2),
    date(2025, 9, 1), date(2025, 9, 2),
}  # fmt: skip
WORKED_SATURDAYS_2025 = {date(2025, 4, 26)}


def _calendar_2025() -> list[tuple]:
    rows, day = [], date(2025, 1, 1)
    while day.year == 2025:
        working = (day.weekday() < 5 or day in WORKED_SATURDAYS_2025) and day not in HOLIDAYS_2025
        rows.append((day, working, "nghỉ lễ" if day in HOLIDAYS_2025 else None))
        day += timedelta(days=1)
    return rows


def _working_days_after(day: date, n: int) -> date:
    """The n-th working day after `day` in the test calendar."""
    working = {d for d, is_working, _ in _calendar_2025() if is_working}
    while n > 0:
        day += timedelta(days=1)
        n -= day in working
    return day


def _catalogue_working_days(procedure_code: str) -> int:
    """Whole working days the seed gives a procedure (the legal due checks rely on it)."""
    with open(DBT_PROJECT / "seeds" / "procedures.csv", encoding="utf-8-sig", newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["procedure_code"] == procedure_code)
    days = Decimal(row["processing_days"])
    assert row["day_type"] == "working" and days == int(days), (procedure_code, row)
    return int(days)


def _ts(text: str | None) -> datetime | None:
    return datetime.strptime(text, "%Y-%m-%d %H:%M") if text else None


def _dossier(
    unit, code, procedure, received, due, status, *, finished=None, returned=None,
    supplements=0, updated=None, file_date=None, file_ext="csv", row=2, channel=1,
):  # fmt: skip
    updated = updated if updated is not None else (returned or finished or received)
    file_date = file_date or (updated or received)[:10]
    return {
        "source_name": "xa_communes",
        "file_path": f"{unit}/{file_date}.{file_ext}",
        "file_date": date.fromisoformat(file_date),
        "row_number": row,
        "dossier_code": code,
        "unit_code": unit,
        "procedure_code": procedure,
        "channel": channel,
        "received_at": _ts(received),
        "due_at": _ts(due),
        "finished_at": _ts(finished),
        "returned_at": _ts(returned),
        "status_code": status,
        "supplement_count": supplements,
        "fee_vnd": 0,
        "paid_online": 0,
        "digitized": 1,
        "e_result": 0,
        "reused": 0,
        "apology_at": None,
        "applicant_name": "Nguyễn Văn A",
        "applicant_id": "031099000123",
        "updated_at": _ts(updated) if updated != "" else None,
        "load_id": "test-load",
    }


D = "H31.13"  # agency id in the dossier codes
DOSSIER_LOG = [
    # 11629, June 2025. 0001 changed twice: the later row (resolved, early) wins.
    _dossier("11629", f"{D}-250602-0001", "1.001193", "2025-06-02 08:30", "2025-06-05 17:00", 2),
    _dossier("11629", f"{D}-250602-0001", "1.001193", "2025-06-02 08:30", "2025-06-05 17:00", 10,
             finished="2025-06-03 10:00", returned="2025-06-04 09:00"),
    _dossier("11629", f"{D}-250603-0002", "1.001193", "2025-06-03 09:00", "2025-06-06 17:00", 10,
             finished="2025-06-06 10:00", returned="2025-06-06 15:00"),  # on time
    _dossier("11629", f"{D}-250604-0003", "1.004873", "2025-06-04 09:00", "2025-06-09 17:00", 9,
             finished="2025-06-11 10:00"),  # late
    _dossier("11629", f"{D}-250605-0004", "1.001193", "2025-06-05 09:00", "2025-06-10 17:00", 10,
             finished="2025-06-10 09:00", supplements=2),  # on the due date, 2 supplements: late
    _dossier("11629", f"{D}-250625-0005", "1.001193", "2025-06-25 09:00", "2025-06-30 17:00", 4),
    _dossier("11629", f"{D}-250620-0006", "1.001193", "2025-06-20 09:00", "2025-06-29 17:00", 5),
    _dossier("11629", f"{D}-250610-0007", "1.001193", "2025-06-10 09:00", "2025-06-13 17:00", 7,
             updated="2025-06-12 10:00"),  # withdrawn
    _dossier("11629", f"{D}-250611-0008", "1.001193", "2025-06-11 09:00", "2025-06-14 17:00", 1),
    # 0009: equal updated_at on one day in two files: the later path (.xlsx) wins; a later
    # file whose row has no updated_at ranks lowest.
    _dossier("11629", f"{D}-250604-0009", "1.001193", "2025-06-04 10:00", "2025-06-06 17:00", 4,
             updated="2025-06-05 10:00"),
    _dossier("11629", f"{D}-250604-0009", "1.001193", "2025-06-04 10:00", "2025-06-06 17:00", 10,
             finished="2025-06-05 09:00", updated="2025-06-05 10:00", file_ext="xlsx", row=3),
    _dossier("11629", f"{D}-250604-0009", "1.001193", "2025-06-04 10:00", "2025-06-06 17:00", 2,
             updated="", file_date="2025-06-07"),
    # 11632: two dossiers carried over from May, one refused in June.
    _dossier("11632", f"{D}-250528-0001", "1.001193", "2025-05-28 09:00", "2025-06-03 17:00", 10,
             finished="2025-06-02 10:00", returned="2025-06-02 14:00"),
    _dossier("11632", f"{D}-250529-0002", "1.001193", "2025-05-29 09:00", "2025-06-04 17:00", 4),
    _dossier("11632", f"{D}-250616-0003", "1.001193", "2025-06-16 09:00", None, 3),
    # the district's environment department: one early, one stopped
    _dossier("313-TNMT", "TNMT-250609-0001", "1.004873", "2025-06-09 09:00", "2025-06-20 17:00",
             10, finished="2025-06-19 16:00"),
    _dossier("313-TNMT", "TNMT-250612-0002", "1.004873", "2025-06-12 09:00", "2025-06-13 17:00",
             8, updated="2025-06-14 08:00"),
    # a unit nobody registered, with a procedure missing from the catalogue
    _dossier("99999", "Z-250602-0001", "9.999999", "2025-06-02 09:00", "2025-06-05 17:00", 10,
             finished="2025-06-05 11:00"),
]  # fmt: skip


TASK_LOG = [
    # source_name, file_path, file_date, row_number, task_id, summary, assigned_by,
    # department_code, assigned_on, deadline_on, completed_on, updated_at, load_id
    ("nhiem_vu", "2025-06-10.csv", date(2025, 6, 10), 2, "NV-2025-017",
     "Rà soát hồ sơ đất đai tồn đọng", "UBND huyện", "313-TNMT", date(2025, 6, 2),
     date(2025, 6, 20), date(2025, 6, 23), datetime(2025, 6, 23, 16, 5), "test-load"),
]  # fmt: skip
DOCUMENT_LOG = [
    # source_name, file_path, file_date, row_number, document_number, unit_code, issued_on,
    # digitally_signed, load_id
    ("van_ban_di", "11629/2025-06-05.csv", date(2025, 6, 5), 2, "45/UBND-VP", "11629",
     date(2025, 6, 5), 1, "test-load"),
    ("van_ban_di", "11629/2025-06-05.csv", date(2025, 6, 5), 3, "46/QĐ-UBND", "11629",
     date(2025, 6, 5), 0, "test-load"),
]  # fmt: skip


def _load_raw(execute) -> None:
    """Create the raw layer and insert the rows; `execute(sql, rows)` runs one insert per row."""
    for statement in create_statements():
        execute(statement, None)
    columns = list(DOSSIER_LOG[0])
    placeholders = ", ".join(["%s"] * len(columns))
    execute(
        f"insert into raw.dossier_log ({', '.join(columns)}) values ({placeholders})",
        [tuple(r[c] for c in columns) for r in DOSSIER_LOG],
    )
    execute("insert into raw.ref_admin_units values (%s, %s, %s, %s, %s, %s, %s, %s)", ADMIN_UNITS)
    execute("insert into raw.registered_units values (%s, %s, %s, %s)", REGISTERED_UNITS)
    execute("insert into raw.ref_calendar values (%s, %s, %s)", _calendar_2025())
    execute(
        "insert into raw.task_log (source_name, file_path, file_date, row_number, task_id, "
        "summary, assigned_by, department_code, assigned_on, deadline_on, completed_on, "
        "updated_at, load_id) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        TASK_LOG,
    )
    execute(
        "insert into raw.document_log (source_name, file_path, file_date, row_number, "
        "document_number, unit_code, issued_on, digitally_signed, load_id) "
        "values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        DOCUMENT_LOG,
    )
    # every logged row's file, as the loader records it: models read only loaded files
    files = sorted(
        {(r["source_name"], r["file_path"], r["load_id"]) for r in DOSSIER_LOG}
        | {(r[0], r[1], r[-1]) for r in TASK_LOG + DOCUMENT_LOG}
    )
    execute(
        "insert into raw.loaded_files (source_name, file_path, file_sha256, file_bytes, "
        "rows_read, rows_loaded, rows_quarantined, load_id, run_id, loaded_at) "
        "values (%s, %s, 'sha', 0, 0, 0, 0, %s, 'pytest', %s)",
        [(*f, datetime(2025, 6, 30, 23, 0)) for f in files],
    )


# -- running dbt ------------------------------------------------------------------------


def _dbt_build(target: str, work: Path, env: dict[str, str]) -> None:
    from dbt.cli.main import dbtRunner

    args = [
        "build",
        "--project-dir", str(DBT_PROJECT),
        "--profiles-dir", str(DBT_PROJECT),
        "--target", target,
        "--target-path", str(work / "target"),
        "--log-path", str(work / "logs"),
        "--vars", json.dumps({"as_of": AS_OF, "run_id": "pytest"}),
        "--no-use-colors",
        "--quiet",
    ]  # fmt: skip
    with _env({**env, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}):
        outcome = dbtRunner().invoke(args)
    results = getattr(outcome.result, "results", None) or []
    failed = [
        f"{r.node.unique_id}: {r.status} {r.message}"
        for r in results
        if str(r.status) not in ("success", "pass")
    ]
    assert outcome.success and not failed, (
        f"dbt build on {target} failed: {failed or outcome.exception}"
    )
    kinds = {r.node.resource_type for r in results}
    assert {"seed", "model", "test", "unit_test"} <= {str(k) for k in kinds}


def _sorted_rows(fetchall, relation: str) -> list[tuple]:
    rows = fetchall(f"select * from {relation}")
    # sort in Python: the two engines' string collations differ
    return sorted(rows, key=lambda r: tuple((v is None, str(v)) for v in r))


def _fetch_marts(fetchall) -> dict[str, list[tuple]]:
    return {mart: _sorted_rows(fetchall, f"cchc_build.{mart}") for mart in MARTS}


def _fetch_staged(fetchall) -> dict[str, list[tuple]]:
    return {view: _sorted_rows(fetchall, f"cchc_staging.{view}") for view in STAGED}


def _columns(fetchall, mart: str, schema: str = "cchc_build") -> list[str]:
    return [
        r[0]
        for r in fetchall(
            "select column_name from information_schema.columns "
            f"where table_schema = '{schema}' and table_name = '{mart}' order by ordinal_position"
        )
    ]


@pytest.fixture(scope="module")
def duckdb_marts(tmp_path_factory):
    work = tmp_path_factory.mktemp("dbt_duckdb")
    path = work / "warehouse.duckdb"
    con = duckdb.connect(str(path))

    def execute(sql, rows):
        sql = sql.replace("%s", "?")
        if rows is None:
            con.execute(sql)
        else:
            con.executemany(sql, rows)

    _load_raw(execute)
    con.close()
    _dbt_build("duckdb", work, {"CCHC_DUCKDB_PATH": str(path)})
    con = duckdb.connect(str(path))
    try:

        def fetchall(sql):
            return con.execute(sql).fetchall()

        yield {
            "rows": _fetch_marts(fetchall),
            "columns": {mart: _columns(fetchall, mart) for mart in MARTS},
            "staged": _fetch_staged(fetchall),
            "staged_columns": {v: _columns(fetchall, v, "cchc_staging") for v in STAGED},
            "work": work,
            "path": path,
        }
    finally:
        con.close()


PG_ADMIN = os.environ.get("CCHC_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="module")
def postgres_marts(tmp_path_factory):
    try:
        psycopg.connect(PG_ADMIN, connect_timeout=5).close()
    except psycopg.Error as exc:
        problem = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if os.environ.get("CCHC_REQUIRE_POSTGRES") or os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required and not reachable at {PG_ADMIN}: {problem}")
        pytest.skip(f"PostgreSQL not reachable: {problem}")
    info = psycopg.conninfo.conninfo_to_dict(PG_ADMIN)
    name = f"cchc_dbt_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    try:
        conninfo = psycopg.conninfo.make_conninfo(PG_ADMIN, dbname=name)
        with psycopg.connect(conninfo) as con:

            def execute(sql, rows):
                with con.cursor() as cur:
                    if rows is None:
                        cur.execute(sql)
                    else:
                        cur.executemany(sql, rows)

            _load_raw(execute)
        work = tmp_path_factory.mktemp("dbt_postgres")
        env = {
            "CCHC_PG_HOST": str(info.get("host") or "127.0.0.1"),
            "CCHC_PG_PORT": str(info.get("port") or 5432),
            "CCHC_PG_USER": str(info.get("user") or "postgres"),
            "CCHC_PG_DBNAME": name,
            "DBT_ENV_SECRET_CCHC_PG_PASSWORD": str(info.get("password") or ""),
        }
        _dbt_build("postgres", work, env)
        with psycopg.connect(conninfo, autocommit=True) as con:  # no lock held over the tests

            def fetchall(sql):
                return con.execute(sql).fetchall()

            yield {
                "rows": _fetch_marts(fetchall),
                "columns": {mart: _columns(fetchall, mart) for mart in MARTS},
                "staged": _fetch_staged(fetchall),
                "staged_columns": {v: _columns(fetchall, v, "cchc_staging") for v in STAGED},
                "conninfo": conninfo,
                "env": env,
                "work": work,
            }
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')


# -- expectations -----------------------------------------------------------------------

TIMELINESS_COLUMNS = [
    "period_grain", "period_start", "unit_code", "received", "carried_over", "resolved",
    "early", "on_time", "late", "in_progress_on_time", "in_progress_overdue", "withdrawn",
    "refused", "stopped", "on_time_rate_766", "on_time_rate_resolved",
    "late_rate_need_to_process",
]  # fmt: skip
FCT_COLUMNS = [
    "dossier_key", "dossier_code", "unit_code", "procedure_code", "channel", "received_at",
    "due_at", "finished_at", "returned_at", "status_code", "supplement_count", "fee_vnd",
    "paid_online", "digitized", "e_result", "reused", "apology_at", "legal_due_at", "timeliness",
]  # fmt: skip
AUDIT_COLUMNS = [
    "dossier_key", "dossier_code", "unit_code", "procedure_code", "received_at", "due_at",
    "legal_due_at", "days_later",
]  # fmt: skip
DIM_COLUMNS = [
    "unit_code", "unit_name", "unit_type", "parent_unit_code", "province_code", "valid_from",
    "valid_to", "successor_unit_code",
]  # fmt: skip


def _by_key(marts, mart: str, *key_columns: str) -> dict:
    columns = marts["columns"][mart]
    index = [columns.index(c) for c in key_columns]
    return {
        tuple(row[i] for i in index) if len(index) > 1 else row[index[0]]: dict(
            zip(columns, row, strict=True)
        )
        for row in marts["rows"][mart]
    }


def _rates(row) -> tuple:
    return (row["on_time_rate_766"], row["on_time_rate_resolved"], row["late_rate_need_to_process"])


def _check_marts(marts) -> None:
    assert marts["columns"]["dossier_timeliness"] == TIMELINESS_COLUMNS
    assert marts["columns"]["fct_dossier"] == FCT_COLUMNS
    assert marts["columns"]["dim_unit"] == DIM_COLUMNS
    assert marts["columns"]["dossier_due_date_audit"] == AUDIT_COLUMNS

    # dim_unit: official units merged with the registered ones, one row per version
    versions = _by_key(marts, "dim_unit", "unit_code", "valid_from")
    assert sorted(versions, key=repr) == sorted(
        [("11629", None), ("11629", date(2025, 7, 1)), ("11632", None), ("31", None),
         ("313", None), ("313-TNMT", None)],
        key=repr,
    )  # fmt: skip
    units = {code: row for (code, start), row in versions.items() if start is None}
    assert units["313-TNMT"]["unit_type"] == "department"
    assert units["313-TNMT"]["parent_unit_code"] == "313"
    assert units["313-TNMT"]["province_code"] == "31"
    assert units["11632"]["unit_name"] == "Phường Đông Hải Hai"
    assert (units["11632"]["unit_type"], units["11632"]["parent_unit_code"]) == ("commune", "313")
    # a surviving code: the legacy version under its district, the new one under the province
    assert units["11629"]["parent_unit_code"] == "313"
    assert (units["11629"]["valid_to"], units["11629"]["successor_unit_code"]) == (
        date(2025, 6, 30),
        "11629",
    )
    current = versions[("11629", date(2025, 7, 1))]
    assert (current["parent_unit_code"], current["valid_to"]) == ("31", None)

    # fct_dossier: latest state, timeliness at the as-of date, legal due date
    dossiers = _by_key(marts, "fct_dossier", "dossier_code")
    assert len(dossiers) == 15
    expected = {
        f"{D}-250602-0001": "early",
        f"{D}-250603-0002": "on_time",
        f"{D}-250604-0003": "late",
        f"{D}-250605-0004": "late",
        f"{D}-250625-0005": "in_progress_on_time",
        f"{D}-250620-0006": "in_progress_overdue",
        f"{D}-250610-0007": "withdrawn",
        f"{D}-250611-0008": "registered",
        f"{D}-250604-0009": "early",
        f"{D}-250528-0001": "early",
        f"{D}-250529-0002": "in_progress_overdue",
        f"{D}-250616-0003": "refused",
        "TNMT-250609-0001": "early",
        "TNMT-250612-0002": "stopped",
        "Z-250602-0001": "on_time",
    }
    assert {code: row["timeliness"] for code, row in dossiers.items()} == expected
    first = dossiers[f"{D}-250602-0001"]
    assert first["status_code"] == 10 and first["procedure_code"] == "1.001193"
    # received in office hours on a working day: due at the same clock time n working
    # days later (1.001193: Monday 08:30 -> Tuesday 08:30; 1.004873: 3 working days from
    # Wednesday 09:00 -> Monday 09:00, the weekend skipped); unknown procedure -> NULL
    for code, procedure, received in [
        (f"{D}-250602-0001", "1.001193", datetime(2025, 6, 2, 8, 30)),
        (f"{D}-250604-0003", "1.004873", datetime(2025, 6, 4, 9, 0)),
    ]:
        due_day = _working_days_after(received.date(), _catalogue_working_days(procedure))
        assert dossiers[code]["legal_due_at"] == datetime.combine(due_day, received.time())
    assert dossiers["Z-250602-0001"]["legal_due_at"] is None
    assert dossiers[f"{D}-250604-0009"]["status_code"] == 10
    assert len(first["dossier_key"]) == 32

    # dossier_timeliness
    rows = _by_key(marts, "dossier_timeliness", "period_grain", "period_start", "unit_code")
    june, may, q2, y = date(2025, 6, 1), date(2025, 5, 1), date(2025, 4, 1), date(2025, 1, 1)
    units_with_june = ["11629", "11632", "31", "313", "313-TNMT", "99999"]
    assert sorted(u for g, p, u in rows if (g, p) == ("month", june)) == units_with_june
    assert sorted(u for g, p, u in rows if (g, p) == ("month", may)) == ["11632", "31", "313"]
    assert sorted(u for g, p, u in rows if (g, p) == ("quarter", q2)) == units_with_june
    assert sorted(u for g, p, u in rows if (g, p) == ("year", y)) == units_with_june
    assert len(rows) == 21

    def counts(row):
        return tuple(row[c] for c in TIMELINESS_COLUMNS[3:14])

    #                    recv carry resol early on_t late ipot ipo wdrn refu stop
    commune = rows[("month", june, "11629")]
    assert counts(commune) == (8, 0, 5, 2, 1, 2, 1, 1, 1, 0, 0)
    assert _rates(commune) == (Decimal("57.14"), Decimal("60.00"), Decimal("42.86"))

    carried = rows[("month", june, "11632")]
    assert counts(carried) == (1, 2, 1, 1, 0, 0, 0, 1, 0, 1, 0)
    assert _rates(carried) == (Decimal("50.00"), Decimal("100.00"), Decimal("50.00"))

    may_commune = rows[("month", may, "11632")]
    assert counts(may_commune) == (2, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0)
    assert _rates(may_commune) == (Decimal("100.00"), None, Decimal("0.00"))

    department = rows[("month", june, "313-TNMT")]
    assert counts(department) == (2, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1)

    # the district rolls up both communes and its department; the province likewise
    district = rows[("month", june, "313")]
    assert counts(district) == (11, 2, 7, 4, 1, 2, 1, 2, 1, 1, 1)
    assert _rates(district) == (Decimal("60.00"), Decimal("71.43"), Decimal("40.00"))
    assert counts(rows[("month", june, "31")]) == counts(district)
    assert counts(rows[("month", may, "313")]) == counts(may_commune)

    # the quarter is counted from the dossiers, not by adding months up
    quarter = rows[("quarter", q2, "313")]
    assert counts(quarter) == (13, 0, 7, 4, 1, 2, 1, 2, 1, 1, 1)
    assert _rates(quarter) == (Decimal("60.00"), Decimal("71.43"), Decimal("40.00"))
    assert counts(rows[("year", y, "313")]) == counts(quarter)

    # a unit missing from dim_unit still counts for itself
    assert counts(rows[("month", june, "99999")]) == (1, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0)

    # dossier_due_date_audit: printed due date later than the law allows (1.001193 is one
    # working day, 1.004873 three), in working days; the printed date equal to the legal
    # one (0003), earlier (TNMT 0002), paused by supplements (0004) or waiting for the
    # citizen (0006), registered-only (0008), refused (0003 of 11632) and the procedure
    # unknown to the catalogue (Z) are not reported.
    audit = {
        row["dossier_code"]: (row["legal_due_at"], row["due_at"], row["days_later"])
        for row in _by_key(marts, "dossier_due_date_audit", "dossier_key").values()
    }
    assert audit == {
        f"{D}-250528-0001": (datetime(2025, 5, 29, 9), datetime(2025, 6, 3, 17), 3),
        f"{D}-250529-0002": (datetime(2025, 5, 30, 9), datetime(2025, 6, 4, 17), 3),
        f"{D}-250602-0001": (datetime(2025, 6, 3, 8, 30), datetime(2025, 6, 5, 17), 2),
        f"{D}-250603-0002": (datetime(2025, 6, 4, 9), datetime(2025, 6, 6, 17), 2),
        f"{D}-250604-0009": (datetime(2025, 6, 5, 10), datetime(2025, 6, 6, 17), 1),
        f"{D}-250610-0007": (datetime(2025, 6, 11, 9), datetime(2025, 6, 13, 17), 2),
        f"{D}-250625-0005": (datetime(2025, 6, 26, 9), datetime(2025, 6, 30, 17), 2),
        "TNMT-250609-0001": (datetime(2025, 6, 12, 9), datetime(2025, 6, 20, 17), 6),
    }
    keys = {row["dossier_code"]: row["dossier_key"] for row in dossiers.values()}
    assert all(
        row["dossier_key"] == keys[row["dossier_code"]]
        for row in _by_key(marts, "dossier_due_date_audit", "dossier_key").values()
    )

    # the task and document logs are staged as they came: renamed and typed, nothing else
    assert marts["staged"]["stg_raw__task_log"] == [
        ("nhiem_vu", "2025-06-10.csv", date(2025, 6, 10), 2, "test-load", "NV-2025-017",
         "Rà soát hồ sơ đất đai tồn đọng", "UBND huyện", "313-TNMT", date(2025, 6, 2),
         date(2025, 6, 20), date(2025, 6, 23), datetime(2025, 6, 23, 16, 5)),
    ]  # fmt: skip
    assert [(r[5], r[6], r[8]) for r in marts["staged"]["stg_raw__document_log"]] == [
        ("45/UBND-VP", "11629", 1),
        ("46/QĐ-UBND", "11629", 0),
    ]

    # no personal data
    for mart in MARTS:
        assert not {"applicant_name", "applicant_id"} & set(marts["columns"][mart])


def test_dbt_build_on_duckdb(duckdb_marts):
    _check_marts(duckdb_marts)


@pytest.mark.postgres
def test_dbt_build_on_postgres_matches_duckdb(postgres_marts, duckdb_marts):
    _check_marts(postgres_marts)
    assert postgres_marts["columns"] == duckdb_marts["columns"]
    for mart in MARTS:
        assert postgres_marts["rows"][mart] == duckdb_marts["rows"][mart], mart
    assert postgres_marts["staged_columns"] == duckdb_marts["staged_columns"]
    for view in STAGED:
        assert postgres_marts["staged"][view] == duckdb_marts["staged"][view], view


@pytest.mark.postgres
def test_postgres_indexes_the_dossier_keys_and_the_uniqueness_tests_still_fail_without_them(
    postgres_marts,
):
    """Runs last on this database (the marts were read before): it adds a duplicate."""
    from dbt.cli.main import dbtRunner

    tables = {"int_dossier__latest_state": ("cchc_intermediate", "unit_code, dossier_code"),
              "int_dossier__enriched": ("cchc_intermediate", "dossier_key"),
              "fct_dossier": ("cchc_build", "dossier_key")}  # fmt: skip
    with psycopg.connect(postgres_marts["conninfo"], autocommit=True) as con:
        for table, (schema, columns) in tables.items():
            found = con.execute(
                "select indexname from pg_indexes where schemaname = %s and tablename = %s "
                "and indexdef like %s",
                [schema, table, f"CREATE UNIQUE INDEX % ({columns}) NULLS NOT DISTINCT"],
            ).fetchall()
            assert len(found) == 1, (table, found)
        (index,) = con.execute("select indexname from pg_indexes where schemaname = "
                               "'cchc_build' and tablename = 'fct_dossier'").fetchone()  # fmt: skip

    def failures() -> dict[str, int]:
        work = postgres_marts["work"]
        args = ["test", "--project-dir", str(DBT_PROJECT), "--profiles-dir", str(DBT_PROJECT),
                "--target", "postgres", "--target-path", str(work / "target_unique"),
                "--log-path", str(work / "logs"), "--select",
                "fct_dossier,test_name:unique int_dossier__latest_state,test_name:"
                "unique_combination_of_columns", "--vars",
                json.dumps({"as_of": AS_OF, "run_id": "pytest"}), "--quiet"]  # fmt: skip
        with _env({**postgres_marts["env"], "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}):
            outcome = dbtRunner().invoke(args)
        return {r.node.name: r.failures for r in outcome.result.results}

    assert set(failures().values()) == {0}
    # without its index, a duplicate dossier in fct_dossier is found by grouping again
    with psycopg.connect(postgres_marts["conninfo"], autocommit=True) as con:
        con.execute(f"drop index cchc_build.{index}")
        con.execute("insert into cchc_build.fct_dossier select * from cchc_build.fct_dossier "
                    "order by dossier_key limit 1")  # fmt: skip
    found = failures()
    assert found.pop("unique_fct_dossier_dossier_key") == 1
    assert set(found.values()) == {0}


def test_docs_generate_offline_and_every_mart_column_is_described_in_both_languages(
    duckdb_marts,
):
    """`dbt docs generate` works without a network; every mart and every one of its
    columns carries a Vietnamese / English description."""
    from dbt.cli.main import dbtRunner

    work = duckdb_marts["work"]
    args = [
        "docs", "generate",
        "--project-dir", str(DBT_PROJECT), "--profiles-dir", str(DBT_PROJECT),
        "--target", "duckdb", "--target-path", str(work / "docs"),
        "--log-path", str(work / "logs"), "--vars", json.dumps({"as_of": AS_OF}), "--quiet",
    ]  # fmt: skip
    with _env({"CCHC_DUCKDB_PATH": str(duckdb_marts["path"]),
               "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}):  # fmt: skip
        outcome = dbtRunner().invoke(args)
    assert outcome.success, outcome.exception
    assert (work / "docs" / "index.html").is_file()
    manifest = json.loads((work / "docs" / "manifest.json").read_text())
    catalog = json.loads((work / "docs" / "catalog.json").read_text())
    described = {
        n["name"]: n for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n["name"] in MARTS
    }  # fmt: skip
    assert set(described) == set(MARTS)
    for name, node in described.items():
        assert " / " in node["description"], f"{name}: needs a Vietnamese / English description"
        built = catalog["nodes"][node["unique_id"]]["columns"]
        for column in built:
            text = node["columns"].get(column, {}).get("description", "")
            assert " / " in text, f"{name}.{column}: needs a Vietnamese / English description"


def test_a_dbt_command_keeps_its_work_folder_only_when_it_failed(tmp_path, monkeypatch):
    """A night's dbt folder (target and logs, some 5 MB) goes once dbt succeeded, or a
    year of nights fills /tmp; a failed command keeps it and its error names the logs."""
    import tempfile

    from flows import transform
    from flows.warehouse import Warehouse

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where mkdtemp makes them
    warehouse = Warehouse.from_url(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    variables = {"as_of": AS_OF, "run_id": "test"}
    transform.run_dbt(warehouse, ["ls", "--select", "fct_dossier"], variables)
    assert not list(tmp_path.glob("cchc-dbt-*"))
    with pytest.raises(transform.TransformError) as failed:  # no raw tables to stage
        transform.run_dbt(warehouse, ["run", "--select", "stg_raw__task_log"], variables)
    (kept,) = tmp_path.glob("cchc-dbt-*")
    assert f"[logs: {kept / 'logs'}]" in str(failed.value)
