"""Audit before publish: the warehouse-level expectations, every data-quality check as a
row (`data_quality_checks`, built beside the marts and published with them), and the
sanity of the marts against what BI reads now.

Checks as rows, one table for the report and for BI (STYLE: data quality as data):
- the Great Expectations findings of every loaded batch (raw.quarantine: FAIL;
  raw.row_flags: WARN), per rule, unit and file day, with an example record code;
- per unit and file day, the accounting of its batches: rows read = loaded + quarantined,
  and the raw layer holds exactly the loaded rows;
- per unit on the as-of day: a file received, its volume against the unit's recent
  working days, and freshness (3 working days silent);
- printed due dates later than the law allows (the due-date audit mart);
- every dbt data test of the build;
- the marts' row counts against the marts BI reads now.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime

import pandas as pd

from flows import raw_schema, validate
from flows.transform import BUILD_SCHEMA, MARTS
from flows.warehouse import Connection, Warehouse

log = logging.getLogger(__name__)
RAW = raw_schema.RAW_SCHEMA
CHECKS_TABLE = "data_quality_checks"
COLUMNS = {
    "run_id": "varchar",
    "checked_at": "timestamp",
    "check_code": "varchar",
    "check_name": "varchar",
    "entity_type": "varchar",
    "entity_code": "varchar",
    "period_start": "date",
    "status": "varchar",
    "records_affected": "bigint",
    "message_vi": "varchar",
    # beyond the issue's columns: what a reader needs to act
    "severity": "varchar",
    "records_checked": "bigint",
    "example_code": "varchar",
    "source_name": "varchar",
}
# Vietnamese / English, as every published column carries (PostgreSQL comments).
DESCRIPTIONS = {
    "": "Kết quả kiểm tra chất lượng dữ liệu, mỗi dòng một kiểm tra / "
    "Data-quality check results, one row per check",
    "run_id": "Mã lần chạy / Run that made the check",
    "checked_at": "Thời điểm kiểm tra / When the check ran",
    "check_code": "Mã kiểm tra (quy tắc) / Check (rule) code",
    "check_name": "Tên kiểm tra / Check name",
    "entity_type": "Loại đối tượng: unit, source, model, mart / What was checked",
    "entity_code": "Mã đối tượng (mã đơn vị, nguồn, bảng) / Code of what was checked",
    "period_start": "Ngày (hoặc kỳ) được kiểm tra / Day or period checked",
    "status": "PASS, FAIL, WARN hoặc N/A / Outcome",
    "records_affected": "Số dòng bị ảnh hưởng / Records affected",
    "message_vi": "Diễn giải bằng tiếng Việt / Plain-language sentence in Vietnamese",
    "severity": "Mức độ: critical (cách ly), warning (cảnh báo) / Severity",
    "records_checked": "Số dòng đã kiểm tra / Records checked",
    "example_code": "Mã hồ sơ ví dụ để tra cứu (không có dữ liệu cá nhân) / Example record code",
    "source_name": "Nguồn dữ liệu / Source",
}
# Suites by raw table: their warehouse-level expectations run on the rows a run loaded.
SUITES_BY_TABLE = {
    "dossier_log": ["dossier_files", "dossier_api"],
    "task_log": ["task_files"],
    "document_log": ["document_files"],
}
RECORD_CODE = {
    "dossier_log": "dossier_code",
    "task_log": "task_id",
    "document_log": "document_number",
}
MAX_DROP = 0.5  # a mart that held >= 100 rows may not lose more than half of them in a night
VOLUME_DROP = 0.3  # a day below 30% of the unit's usual volume is worth a call
SILENT_DAYS = 3  # working days without a file before a unit is out of date
MIN_HISTORY_DAYS = 5  # days of files a unit needs before its volume has a "usual"


class AuditError(RuntimeError):
    """The built marts are not fit to publish."""


def audit(warehouse: Warehouse, as_of: str, run_id: str, dbt_nodes: list[dict]) -> dict[str, int]:
    """Flag this run's rows, write the checks table, fail if a mart looks broken.

    Returns the number of checks per status.
    """
    with warehouse.transaction() as conn:
        flag_unknown_references(conn, run_id)
        _count_new_files(conn, run_id)
    with warehouse.connect() as conn:
        frames = [_findings(conn), _daily(conn, as_of), _dbt_tests(dbt_nodes)]
        sanity = _mart_sanity(conn, warehouse)
    frames.append(sanity)
    checks = pd.concat([f for f in frames if len(f)], ignore_index=True)
    checks["run_id"] = run_id
    checks["checked_at"] = checked_at = datetime.now()
    for column, kind in COLUMNS.items():
        if column not in checks:
            checks[column] = None
        if kind == "bigint":
            checks[column] = pd.to_numeric(checks[column]).astype("Int64")
    checks["period_start"] = pd.to_datetime(checks.period_start)
    table = f"{BUILD_SCHEMA}.{CHECKS_TABLE}"
    with warehouse.transaction() as conn:
        conn.execute(f"drop table if exists {table}")
        columns = ", ".join(f"{c} {t}" for c, t in COLUMNS.items())
        conn.execute(f"create table {table} ({columns})")
        conn.load_frame(table, checks, list(COLUMNS))
        # one row per unit and file day, or per unit and day received: in SQL, not a
        # sentence formatted in Python for each of 370,000 rows every night
        for insert in (_accounting, _due_dates):
            insert(conn, table, run_id, checked_at)
        if warehouse.kind == "postgres":
            comment_on(conn, table, DESCRIPTIONS)
        statuses = conn.fetchall(f"select status, count(*) from {table} group by status")
    broken = sanity[sanity.status == "FAIL"] if len(sanity) else sanity
    if len(broken):
        raise AuditError("; ".join(broken.message_vi))
    return {str(status): int(n) for status, n in statuses}


def flag_unknown_references(conn: Connection, run_id: str) -> None:
    """The suites' warehouse-level expectations (unit registered, procedure known) on the
    rows this run loaded: each hit becomes a flag, like any other warning."""
    issue_columns = ", ".join(raw_schema.ROW_FLAGS)
    for table, suites in SUITES_BY_TABLE.items():
        batch = f"(select * from {RAW}.{table} where load_id like %s)"
        seen = set()
        for suite in suites:
            stored = json.loads((validate.EXPECTATIONS_DIR / f"{suite}.json").read_text("utf-8"))
            for e in stored["expectations"]:
                meta = e["meta"]
                if e["type"] != "unexpected_rows_expectation" or meta["rule"] in seen:
                    continue
                seen.add(meta["rule"])
                query = e["kwargs"]["unexpected_rows_query"].replace("{batch}", batch)
                conn.execute(
                    f"insert into {RAW}.row_flags ({issue_columns}) "
                    f"select x.source_name, x.file_path, x.row_number, x.{RECORD_CODE[table]}, "
                    f"%s, cast(x.{meta['value_column']} as varchar), %s, %s, x.load_id "
                    f"from ({query}) x",
                    [meta["column"], meta["rule"], meta["message_vi"], f"{run_id}:%"],
                )


def _rule_names() -> dict[str, str]:
    """Rule -> its Vietnamese sentence, from every stored suite."""
    names = {}
    for suite in validate.SUITE_BUILDERS:
        stored = json.loads((validate.EXPECTATIONS_DIR / f"{suite}.json").read_text("utf-8"))
        for e in stored["expectations"]:
            names.setdefault(e["meta"]["rule"], e["meta"]["message_vi"])
    return names


def _findings(conn: Connection) -> pd.DataFrame:
    """GX findings per rule, unit and file day: FAIL for quarantined rows, WARN for flags."""
    parts = []
    for table, status, severity in (("quarantine", "FAIL", "critical"),
                                    ("row_flags", "WARN", "warning")):  # fmt: skip
        parts.append(
            conn.fetch_df(
                "select i.source_name, i.rule as check_code, "
                "coalesce(f.unit_folder, i.source_name) as entity_code, "
                "case when f.unit_folder is null then 'source' else 'unit' end as entity_type, "
                "f.file_date as period_start, count(*) as records_affected, "
                "min(i.record_code) as example_code, min(i.message_vi) as message, "
                "count(distinct i.file_path) as files "
                f"from {RAW}.{table} i left join {RAW}.loaded_files f "
                "on f.source_name = i.source_name and f.file_path = i.file_path "
                "group by 1, 2, 3, 4, 5"
            ).assign(status=status, severity=severity)
        )
    found = pd.concat(parts, ignore_index=True)
    if found.empty:
        return found
    found["check_name"] = found.message
    found["message_vi"] = [
        f"{r.entity_code}: {r.records_affected} dòng — {r.message}"
        + (f" Ví dụ: {r.example_code}." if r.example_code else "")
        for r in found.itertuples()
    ]
    return found.drop(columns=["message", "files"])


def _count_new_files(conn: Connection, run_id: str) -> None:
    """Count what the raw layer holds of each file no audit has counted yet (all of them
    on the first night, the night's files after): loaded rows present, each quarantined
    row recorded. Joined through the new files, not grouped over the whole history."""
    # listed first, in a small table with statistics: as a subquery PostgreSQL planned
    # a scan of the whole change log for a night's 200 files (28.6 s at 10,000,000)
    new = "cchc_unaccounted_files"
    conn.execute(f"drop table if exists {new}")
    conn.execute(
        f"create temporary table {new} as select f.source_name, f.file_path, f.load_id "
        f"from {RAW}.loaded_files f where not exists (select 1 from {RAW}.file_accounting a "
        f"where {_same_file('a', 'f')})"
    )
    if conn.warehouse.kind == "postgres":
        conn.execute(f"analyze {new}")
    counted = " union all ".join(
        f"select x.source_name, x.file_path, x.load_id, count(*) as n, 0 as q "
        f"from {RAW}.{t} x join {new} f on {_same_file('f', 'x')} group by 1, 2, 3"
        for t in SUITES_BY_TABLE
    )
    quarantined = (  # a file quarantined whole has no rows
        "select x.source_name, x.file_path, x.load_id, 0 as n, count(distinct x.row_number) "
        f"as q from {RAW}.quarantine x join {new} f on {_same_file('f', 'x')} group by 1, 2, 3"
    )
    columns = ", ".join(raw_schema.FILE_ACCOUNTING)
    conn.execute(
        f"insert into {RAW}.file_accounting ({columns}) "
        "select f.source_name, f.file_path, f.load_id, coalesce(sum(c.n), 0), "
        f"coalesce(sum(c.q), 0), %s from {new} f left join ({counted} union all "
        f"{quarantined}) c on {_same_file('c', 'f')} group by 1, 2, 3",
        [run_id],
    )
    conn.execute(f"drop table {new}")


def _same_file(left: str, right: str) -> str:
    return " and ".join(
        f"{left}.{c} = {right}.{c}" for c in ("source_name", "file_path", "load_id")
    )


def _insert_checks(conn: Connection, table: str, run_id: str, checked_at, select: str,
                   params: list | None = None) -> None:  # fmt: skip
    """Checks computed in SQL: `select` gives the columns of COLUMNS after the first two."""
    columns = ", ".join(COLUMNS)
    conn.execute(
        f"insert into {table} ({columns}) select %s, %s, checks.* from ({select}) checks",
        [run_id, checked_at, *(params or [])],
    )


def _text(expression: str) -> str:
    return f"cast({expression} as varchar)"


def _accounting(conn: Connection, table: str, run_id: str, checked_at) -> None:
    """Per unit and file day: rows read = loaded + quarantined, as stored, and as found in
    the raw layer (counted once per file, _count_new_files)."""
    grouped = (
        "select f.source_name, coalesce(f.unit_folder, f.source_name) as entity_code, "
        "case when f.unit_folder is null then 'source' else 'unit' end as entity_type, "
        "f.file_date as period_start, cast(sum(f.rows_read) as bigint) as records_checked, "
        "cast(sum(f.rows_loaded) as bigint) as loaded, "
        "cast(sum(f.rows_quarantined) as bigint) as quarantined, "
        "sum(case when f.rows_read <> f.rows_loaded + f.rows_quarantined "
        "or a.load_id is null or f.rows_loaded <> a.rows_present "
        "or f.rows_quarantined <> a.rows_quarantined_present then 1 else 0 end) as broken "
        f"from {RAW}.loaded_files f left join {RAW}.file_accounting a on {_same_file('a', 'f')} "
        "group by 1, 2, 3, 4"
    )
    _insert_checks(
        conn, table, run_id, checked_at,
        "select 'batch_accounting', %s, entity_type, entity_code, period_start, "
        "case when broken > 0 then 'FAIL' else 'PASS' end, quarantined, "
        f"entity_code || ': đọc ' || {_text('records_checked')} || ' dòng, nạp ' || "
        f"{_text('loaded')} || ', cách ly ' || {_text('quarantined')} || case when broken > 0 "
        "then ' — số liệu không khớp với kho dữ liệu.' else '.' end, "
        f"'critical', records_checked, cast(null as varchar), source_name from ({grouped}) g",
        ["Đối soát dòng: đọc = nạp + cách ly"],
    )  # fmt: skip


def _daily(conn: Connection, as_of: str) -> pd.DataFrame:
    """Per unit that has ever sent files: today's file, its volume, and freshness."""
    calendar = conn.fetch_df(
        f"select calendar_date from {RAW}.ref_calendar where is_working_day "
        "and calendar_date <= %s order by calendar_date desc limit 21",
        [as_of],
    )
    days = [pd.Timestamp(d).date() for d in calendar.calendar_date]
    day = pd.Timestamp(as_of).date()
    if not days:
        return pd.DataFrame()
    working_today = days[0] == day
    silent_since = days[min(SILENT_DAYS, len(days)) - 1]  # the 3rd working day back
    recent = [d for d in days if d < day][:20]
    units = conn.fetch_df(
        "select source_name, coalesce(unit_folder, source_name) as unit, "
        "max(file_date) as last_day, "
        "sum(case when file_date = %s then rows_read else 0 end) as today_rows, "
        "sum(case when file_date = %s then 1 else 0 end) as today_files "
        f"from {RAW}.loaded_files where file_date <= %s group by 1, 2",
        [as_of, as_of, as_of],
    )
    per_day = conn.fetch_df(
        "select source_name, coalesce(unit_folder, source_name) as unit, file_date, "
        f"sum(rows_read) as n from {RAW}.loaded_files "
        f"where file_date >= %s and file_date < %s group by 1, 2, 3",
        [min(recent) if recent else as_of, as_of],
    )
    rows = []
    for u in units.itertuples():
        last = pd.Timestamp(u.last_day).date() if pd.notna(u.last_day) else None
        base = {"source_name": u.source_name, "entity_code": u.unit, "period_start": day,
                "entity_type": "unit" if u.unit != u.source_name else "source"}  # fmt: skip
        silent = last is None or last < silent_since
        rows.append({**base, "check_code": "freshness", "severity": "critical",
                     "check_name": "Gửi dữ liệu đều đặn",
                     "status": "FAIL" if silent else "PASS", "records_affected": int(silent),
                     "message_vi": f"{u.unit}: đã {SILENT_DAYS} ngày làm việc không gửi dữ liệu "
                     f"(lần cuối {last:%d/%m/%Y})." if silent and last else
                     f"{u.unit}: dữ liệu gửi đến ngày {last:%d/%m/%Y}." if last else
                     f"{u.unit}: chưa gửi dữ liệu."})  # fmt: skip
        if not working_today:
            continue
        sent = int(u.today_files) > 0
        rows.append({**base, "check_code": "file_received", "severity": "warning",
                     "check_name": "Có tệp dữ liệu trong ngày",
                     "status": "PASS" if sent else "WARN", "records_affected": 0 if sent else 1,
                     "message_vi": f"{u.unit}: " + ("đã gửi dữ liệu ngày" if sent else
                     "không gửi dữ liệu ngày") + f" {day:%d/%m/%Y}."})  # fmt: skip
        history = per_day[(per_day.source_name == u.source_name) & (per_day.unit == u.unit)]
        usual = float(history.n.median()) if len(history) else 0.0
        if sent and len(history) >= MIN_HISTORY_DAYS and usual >= 10:
            low = int(u.today_rows) < VOLUME_DROP * usual
            rows.append({**base, "check_code": "volume_drop", "severity": "warning",
                         "check_name": "Số lượng dữ liệu so với ngày thường",
                         "status": "WARN" if low else "PASS", "records_checked": int(u.today_rows),
                         "records_affected": 0,
                         "message_vi": f"{u.unit}: {int(u.today_rows)} dòng ngày {day:%d/%m/%Y}, "
                         f"ngày thường khoảng {usual:.0f} dòng"
                         + (" — giảm bất thường." if low else ".")})  # fmt: skip
    return pd.DataFrame(rows)


def _due_dates(conn: Connection, table: str, run_id: str, checked_at) -> None:
    """Per unit and day received: dossiers printed with a due date later than the law's."""
    grouped = (
        "select unit_code, cast(received_at as date) as received_date, "
        "cast(count(*) as bigint) as n, min(dossier_code) as example_code "
        f"from {BUILD_SCHEMA}.dossier_due_date_audit group by 1, 2"
    )
    _insert_checks(
        conn, table, run_id, checked_at,
        "select 'due_date_later_than_law', %s, 'unit', unit_code, received_date, 'WARN', n, "
        f"unit_code || ': ' || {_text('n')} || ' hồ sơ có ngày hẹn trả muộn hơn thời hạn giải "
        "quyết theo quy định. Ví dụ: ' || example_code || '.', 'warning', cast(null as bigint), "
        f"example_code, cast(null as varchar) from ({grouped}) g",
        ["Ngày hẹn trả muộn hơn thời hạn luật định"],
    )  # fmt: skip


def _dbt_tests(nodes: list[dict]) -> pd.DataFrame:
    rows = []
    for n in nodes:
        if not n["node"].startswith("test."):
            continue
        status = {"pass": "PASS", "fail": "FAIL", "warn": "WARN"}.get(n["status"], "N/A")
        name = n["node"].split(".")[2]
        rows.append({
            "check_code": f"dbt.{name}", "check_name": name, "entity_type": "model",
            "entity_code": n.get("model") or "", "status": status,
            "severity": "critical" if status == "FAIL" else "warning",
            "records_affected": int(n.get("failures") or 0),
            "message_vi": f"Kiểm thử dbt {name}: "
            + ("đạt." if status == "PASS" else f"{int(n.get('failures') or 0)} dòng không đạt."),
        })  # fmt: skip
    return pd.DataFrame(rows)


def mart_counts(conn: Connection, warehouse: Warehouse, schema: str) -> dict[str, int]:
    """Each mart's row count as the audit counted it in `schema`'s checks table. The
    published checks were published with the marts, so they give the published marts'
    counts without reading them again (fct_dossier: 10,000,000 rows, 2.3 s)."""
    if not warehouse.columns_of(conn, schema, CHECKS_TABLE):
        return {}
    rows = conn.fetchall(
        f"select entity_code, records_checked from {schema}.{CHECKS_TABLE} "
        "where check_code = 'mart_row_count'"
    )
    return {mart: int(n) for mart, n in rows}


def _mart_sanity(conn: Connection, warehouse: Warehouse) -> pd.DataFrame:
    """Each built mart against the published one: a night may not halve a mart."""
    rows = []
    counted = mart_counts(conn, warehouse, "marts")
    for mart in MARTS:
        built = conn.fetchall(f"select count(*) from {BUILD_SCHEMA}.{mart}")[0][0]
        published = None
        if warehouse.columns_of(conn, "marts", mart):
            published = counted.get(mart)
            if published is None:  # published before the checks counted it
                published = conn.fetchall(f"select count(*) from marts.{mart}")[0][0]
        shrunk = published is not None and published >= 100 and built < published * (1 - MAX_DROP)
        rows.append({
            "check_code": "mart_row_count", "check_name": "Số dòng của bảng báo cáo",
            "entity_type": "mart", "entity_code": mart, "severity": "critical",
            "status": "FAIL" if shrunk else "PASS", "records_checked": int(built),
            "records_affected": int(published - built) if shrunk else 0,
            "message_vi": f"marts.{mart}: {built} dòng"
            + (f", trước đây {published} — giảm quá một nửa, không công bố." if shrunk else "."),
        })  # fmt: skip
    return pd.DataFrame(rows)


def comment_on(conn: Connection, table: str, descriptions: dict[str, str]) -> None:
    """PostgreSQL comments: '' describes the table, the other keys its columns."""
    for column, text in descriptions.items():
        target = f"table {table}" if not column else f"column {table}.{column}"
        conn.execute(f"comment on {target} is '{text.replace(chr(39), chr(39) * 2)}'")
