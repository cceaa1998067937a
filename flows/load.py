"""Extract, validate and load: source files -> raw tables, idempotently.

A file already loaded (same path, same bytes) is not read again; a file whose bytes
changed replaces what it loaded before. Each batch commits in one transaction, so a
failure leaves the raw layer as it was.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime

import pandas as pd

from flows import raw_schema, reference, refine, validate
from flows.settings import Source
from flows.sources import document_files, dossier_files, task_files
from flows.sources.common import FileUnreadable, copy_blocks, decode
from flows.warehouse import Connection, Warehouse

log = logging.getLogger(__name__)
RAW = raw_schema.RAW_SCHEMA
ISSUE_COLUMNS = list(raw_schema.QUARANTINE)


@dataclass
class SourceResult:
    source_name: str
    kind: str
    files_seen: int = 0
    files_loaded: int = 0
    files_unchanged: int = 0
    files_quarantined: int = 0
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_flagged: int = 0
    problems: list[str] = field(default_factory=list)
    # wall time per step: "land" (files -> text rows), "refine" (type, validate, write)
    seconds: dict[str, float] = field(default_factory=dict)

    def timed(self, step: str, started: float) -> None:
        self.seconds[step] = self.seconds.get(step, 0.0) + time.perf_counter() - started

    def as_dict(self) -> dict:
        return asdict(self)


def new_run_id() -> str:
    return datetime.now().strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


FILE_KINDS = {
    "dossier_files": dossier_files,
    "task_files": task_files,
    "document_files": document_files,
}


GROUP_BYTES = 64 << 20  # files committed together: one transaction, one validation pass


def load_file_source(warehouse: Warehouse, source: Source, run_id: str) -> SourceResult:
    """Load every new or changed file of a file source (dossiers, tasks or documents).

    Files are committed in groups of about GROUP_BYTES, each group in one transaction
    with its raw.loaded_files rows: a crash loses no committed file and the rerun picks
    up exactly the files not committed. Big files stream in bounded chunks.
    """
    kind = FILE_KINDS[source.kind]
    result = SourceResult(source.name, source.kind)
    files = kind.discover(source.path)
    result.files_seen = len(files)
    with warehouse.connect() as conn:
        known = dict(
            conn.fetchall(
                f"select file_path, file_sha256 from {RAW}.loaded_files where source_name = %s",
                [source.name],
            )
        )
    # Only a known path is hashed up front; a new file is hashed while it is landed.
    todo = [f for f in files if f.relative_path not in known or known[f.relative_path] != f.sha256]
    changed = {f.relative_path for f in todo if f.relative_path in known}
    result.files_unchanged = len(files) - len(todo)
    group: list = []
    group_bytes = 0
    for file in todo:
        group.append(file)
        group_bytes += file.path.stat().st_size
        if group_bytes >= GROUP_BYTES:
            _load_group(warehouse, source, kind, run_id, group, changed, result)
            group, group_bytes = [], 0
    if group:
        _load_group(warehouse, source, kind, run_id, group, changed, result)
    return result


LANDING, FILES, TYPED, FINDINGS, RULES, REJECTED = (
    "cchc_landing",
    "cchc_files",
    "cchc_typed",
    "cchc_findings",
    "cchc_rules",
    "cchc_rejected",
)  # temporary tables: one group's working set, gone with its connection


class _FastPathFailed(RuntimeError):
    """A file that looked plain was refused by COPY; the group is redone carefully."""


def _load_group(warehouse, source: Source, kind, run_id, files, changed, result) -> None:
    forget = [f.relative_path for f in files if f.relative_path in changed]
    try:
        _land_and_refine(warehouse, source, kind, run_id, files, forget, result, careful=False)
    except _FastPathFailed as exc:
        log.warning("source %s: %s; reading this group row by row", source.name, exc.__cause__)
        _land_and_refine(warehouse, source, kind, run_id, files, forget, result, careful=True)


def _land_and_refine(warehouse, source, kind, run_id, files, forget, result, *, careful) -> None:
    """One group in one transaction: land every file's cells as text, then type and
    validate them set-based, and write accepted rows, quarantine, flags and loaded_files.

    Plain CSVs stream straight into COPY (their row number is their place in the file);
    anything else (XLSX, quoting, ragged rows) goes through the careful reader, which
    numbers rows itself and quarantines the lines it cannot split.
    """
    now = datetime.now()
    names = list(kind.COLUMNS.values())
    records, parse_issues, parse_bad = [], [], {}
    unreadable = 0
    started = time.perf_counter()
    with warehouse.transaction() as conn:
        _forget_files(conn, source.name, kind.TABLE, forget)  # what changed files loaded before
        numbered = (
            "ordinal bigint generated always as identity, " if warehouse.kind == "postgres" else ""
        )
        text_columns = ", ".join(f"{c} varchar" for c in names)
        conn.execute(
            f"create temp table {LANDING} ({numbered}file_id integer not null, "
            f"row_number integer, {text_columns})"
        )

        def describe(file_id: int, file, plan) -> dict:
            record = {
                "file_id": file_id,
                "source_name": source.name,
                "file_path": file.relative_path,
                "file_date": pd.Timestamp(file.file_date) if file.file_date else pd.NaT,
                "unit_folder": file.unit_folder,
                "file_sha256": file.sha256,
                "file_bytes": file.size,
                "encoding": plan.encoding if plan else None,
                "load_id": f"{run_id}:{file.sha256[:12]}",
                "run_id": run_id,
                "loaded_at": now,
            }
            records.append(record)
            return record

        def straight(run) -> Iterator[bytes]:
            for file_id, (file, plan) in run:
                describe(file_id, file, plan)
                yield from copy_blocks(file, plan, b"%d," % file_id)

        plans = enumerate((f, None if careful else kind.FORMAT.copy_plan(f)) for f in files)
        # consecutive plain files with the same header share one COPY
        for columns, run in itertools.groupby(plans, key=lambda p: p[1][1] and p[1][1].columns):
            if columns:
                try:
                    conn.copy_csv(LANDING, ["file_id", *columns], straight(run))
                except Exception as exc:
                    raise _FastPathFailed("a plain-looking file did not COPY") from exc
                continue
            for file_id, (file, _) in run:
                record = describe(file_id, file, None)
                try:
                    bad = _land_carefully(conn, kind, file, file_id, names, record)
                except FileUnreadable as exc:
                    unreadable += 1
                    parse_issues.append(
                        issue(source.name, file.relative_path, None, None, None, exc.value,
                              exc.rule, exc.message_vi, record["load_id"])
                    )  # fmt: skip
                    continue
                parse_bad[file_id] = len(bad)
                parse_issues += [
                    issue(source.name, file.relative_path, n, None, None, line[:500],
                          "row_unparseable", "Dòng không đọc được (số cột khác dòng tiêu đề).",
                          record["load_id"])
                    for n, line in bad
                ]  # fmt: skip
        result.timed("land", started)
        started = time.perf_counter()
        counts = _refine(conn, warehouse, source.name, kind, pd.DataFrame(records))
        conn.load_frame(f"{RAW}.quarantine", _issue_frame(parse_issues), ISSUE_COLUMNS)
        for record in records:
            read, loaded, rejected = counts.get(record["file_id"], (0, 0, 0))
            bad = parse_bad.get(record["file_id"], 0)
            record.update(rows_read=read + bad, rows_loaded=loaded, rows_quarantined=rejected + bad)
            result.rows_read += read + bad
            result.rows_loaded += loaded
            result.rows_quarantined += rejected + bad
        result.rows_flagged += counts.get("flagged", 0)
        conn.load_frame(f"{RAW}.loaded_files", pd.DataFrame(records), list(raw_schema.LOADED_FILES))
    result.timed("refine", started)  # the commit included
    result.files_quarantined += unreadable
    result.files_loaded += len(files) - unreadable


def _land_carefully(conn, kind, file, file_id: int, names: list[str], record: dict) -> list:
    """Read `file` row by row (any layout, encoding, quoting) and land its cells."""
    bad: list = []

    chunks = kind.read_chunks(file)
    first = next(chunks)  # a file that is no table fails here, before COPY starts

    def blocks():
        for table in itertools.chain([first], chunks):
            record["encoding"] = table.encoding
            bad.extend(table.bad_rows)
            out = io.StringIO()
            writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
            writer.writerows(
                [file_id, number, *row]
                for number, row in zip(table.numbers, table.records, strict=True)
            )
            yield out.getvalue().encode("utf-8")

    conn.copy_csv(LANDING, ["file_id", "row_number", *names], blocks())
    return bad


def _refine(conn, warehouse, source_name: str, kind, files: pd.DataFrame) -> dict:
    """Type and validate the landed rows set-based; write what they decide.

    Returns {file_id: (rows read, rows loaded, rows quarantined), "flagged": rows flagged}.
    """
    if files.empty:
        return {}
    dialect = refine.Dialect(warehouse.kind)
    rules = refine.rules(kind.SUITE, kind, dialect)
    conn.execute(
        f"create temp table {FILES} (file_id integer, file_path varchar, file_date date, "
        "unit_folder varchar, load_id varchar)"
    )
    conn.load_frame(FILES, files, ["file_id", "file_path", "file_date", "unit_folder", "load_id"])
    conn.execute(
        f"create temp table {RULES} (rule_no integer, rule varchar, severity varchar, "
        "column_name varchar, message_vi varchar)"
    )
    conn.load_frame(
        RULES,
        pd.DataFrame(
            [(r.number, r.rule, r.severity, r.column_name, r.message_vi) for r in rules],
            columns=["rule_no", "rule", "severity", "column_name", "message_vi"],
        ),
        ["rule_no", "rule", "severity", "column_name", "message_vi"],
    )
    analyze = warehouse.kind == "postgres"  # temporary tables get no statistics otherwise
    if analyze:
        conn.execute(f"analyze {LANDING}")
        conn.execute("set local datestyle = 'ISO, DMY'")  # dd/mm/yyyy, as the contract writes
    typed = refine.typed_select(kind, LANDING, FILES, warehouse.insertion_order, dialect)
    conn.execute(f"create temp table {TYPED} as {typed}")
    if analyze:
        conn.execute(f"analyze {TYPED}")
    found = refine.findings_select(TYPED, kind.RECORD_CODE, rules)
    conn.execute(f"create temp table {FINDINGS} as {found}")
    conn.execute(
        f"create temp table {REJECTED} as select distinct f.file_id, f.row_number "
        f"from {FINDINGS} f join {RULES} r on r.rule_no = f.rule_no where r.severity = 'critical'"
    )
    shown = "substr(f.value, 1, 500)"
    for target, severity in (("quarantine", "= 'critical'"), ("row_flags", "<> 'critical'")):
        conn.execute(
            f"insert into {RAW}.{target} ({', '.join(ISSUE_COLUMNS)}) "
            f"select %s, f.file_path, f.row_number, f.record_code, r.column_name, {shown}, "
            f"r.rule, r.message_vi, f.load_id from {FINDINGS} f "
            f"join {RULES} r on r.rule_no = f.rule_no where r.severity {severity}"
            + ("" if target == "quarantine" else f" and not exists (select 1 from {REJECTED} q "
               "where q.file_id = f.file_id and q.row_number = f.row_number)"),
            [source_name],
        )  # fmt: skip
    columns = [c for c in raw_schema.TABLES[kind.TABLE] if c != "source_name"]
    conn.execute(
        f"insert into {RAW}.{kind.TABLE} (source_name, {', '.join(columns)}) "
        f"select %s, {', '.join(columns)} from {TYPED} t where not exists "
        f"(select 1 from {REJECTED} q where q.file_id = t.file_id and q.row_number = t.row_number)",
        [source_name],
    )
    counts: dict = {}
    for file_id, read, rejected in conn.fetchall(
        f"select t.file_id, count(*), count(q.file_id) from {TYPED} t left join {REJECTED} q "
        "on q.file_id = t.file_id and q.row_number = t.row_number group by t.file_id"
    ):
        counts[file_id] = (int(read), int(read) - int(rejected), int(rejected))
    counts["flagged"] = conn.fetchall(
        f"select count(*) from (select distinct file_id, row_number from {FINDINGS} f "
        f"where not exists (select 1 from {REJECTED} q where q.file_id = f.file_id "
        "and q.row_number = f.row_number)) x"
    )[0][0]
    return counts


def load_dossier_files(warehouse: Warehouse, source: Source, run_id: str) -> SourceResult:
    return load_file_source(warehouse, source, run_id)


def split_by_findings(
    batch: pd.DataFrame, suite: str, source_name: str, record_code_column: str
) -> tuple[pd.DataFrame, list[dict], list[dict]]:
    """GX-validate a typed batch -> (accepted rows, quarantine issues, warning flags).

    The batch needs a unique index and file_path, row_number and load_id columns.
    Critical findings quarantine the row (CONTRACTS §1f); warnings load it and flag it.
    """
    if batch.empty:
        return batch, [], []
    findings = validate.findings(batch, suite)
    critical = findings[findings.severity == "critical"]
    rejected = set(critical.row_index)
    accepted = batch.drop(index=list(rejected))
    warnings = findings[(findings.severity != "critical") & ~findings.row_index.isin(rejected)]
    issues: list[dict] = []
    flags: list[dict] = []
    for found, sink in ((critical, issues), (warnings, flags)):
        rows = batch.loc[found.row_index]
        for f, row in zip(found.itertuples(), rows.itertuples(), strict=True):
            sink.append(
                issue(source_name, row.file_path, int(row.row_number),
                      getattr(row, record_code_column), f.column_name, f.value, f.rule,
                      f.message_vi, row.load_id)
            )  # fmt: skip
    return accepted, issues, flags


def write_batch(
    warehouse: Warehouse,
    *,
    source_name: str,
    table: str,
    accepted: pd.DataFrame,
    issues: list[dict],
    flags: list[dict],
    file_rows: list[dict],
    forget_paths: list[str],
    after: Callable[[Connection], None] | None = None,
) -> None:
    """Everything a batch produced, in one transaction: all of it lands, or none of it.

    Rows earlier versions of `forget_paths` loaded are removed first (a changed file
    replaces them); `after` runs last inside the same transaction (e.g. a watermark).
    """
    columns = list(raw_schema.TABLES[table])
    with warehouse.transaction() as conn:
        _forget_files(conn, source_name, table, forget_paths)
        conn.load_frame(f"{RAW}.{table}", accepted, columns)
        conn.load_frame(f"{RAW}.quarantine", _issue_frame(issues), ISSUE_COLUMNS)
        conn.load_frame(f"{RAW}.row_flags", _issue_frame(flags), ISSUE_COLUMNS)
        if file_rows:
            conn.load_frame(
                f"{RAW}.loaded_files", pd.DataFrame(file_rows), list(raw_schema.LOADED_FILES)
            )
        if after is not None:
            after(conn)


def issue(source_name, file_path, row_number, record_code, column, value, rule, message, load_id):
    """One row of raw.quarantine or raw.row_flags."""
    return {
        "source_name": source_name,
        "file_path": file_path,
        "row_number": row_number,
        "record_code": None if pd.isna(record_code) else record_code,
        "column_name": column,
        "value": None if value is None or pd.isna(value) else str(value),
        "rule": rule,
        "message_vi": message,
        "load_id": load_id,
    }


def _issue_frame(issues: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(issues, columns=ISSUE_COLUMNS)
    frame["row_number"] = frame["row_number"].astype("Int64")
    return frame


def _forget_files(conn: Connection, source_name: str, table: str, paths: list[str]) -> None:
    """Remove what earlier versions of these files loaded (a changed file replaces them)."""
    if not paths:
        return
    placeholders = ", ".join(["%s"] * len(paths))
    for target in (table, "quarantine", "row_flags", "loaded_files"):
        conn.execute(
            f"delete from {RAW}.{target} where source_name = %s and file_path in ({placeholders})",
            [source_name, *paths],
        )


# -- registered units (CONTRACTS §1e) and reference data

UNIT_TYPES = {"province", "district", "commune", "department"}


def load_registered_units(warehouse: Warehouse, units_file, run_id: str) -> int:
    """Replace raw.registered_units with the sources file's `units:` CSV; return rows loaded."""
    frame = pd.DataFrame(columns=list(raw_schema.REGISTERED_UNITS))
    issues = []
    relative = units_file.name if units_file else None
    if units_file is not None:
        if not units_file.is_file():
            raise FileNotFoundError(f"units file not found: {units_file}")
        text, _ = decode(units_file.read_bytes())
        raw = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        raw.columns = [c.strip().lower() for c in raw.columns]
        missing = [c for c in raw_schema.REGISTERED_UNITS if c not in raw.columns]
        if missing:
            raise ValueError(f"units file {units_file}: missing columns {', '.join(missing)}")
        raw = raw.apply(lambda col: col.str.strip())
        bad_type = ~raw.unit_type.isin(UNIT_TYPES)
        bad_code = raw.unit_code == ""
        load_id = f"{run_id}:units"
        for i in raw.index[bad_type | bad_code]:
            column, value = ("unit_code", "") if bad_code[i] else ("unit_type", raw.unit_type[i])
            issues.append(
                {
                    "source_name": "units",
                    "file_path": relative,
                    "row_number": int(i) + 2,
                    "record_code": raw.unit_code[i] or None,
                    "column_name": column,
                    "value": value,
                    "rule": f"{column}_invalid",
                    "message_vi": "Đơn vị đăng ký thiếu mã hoặc loại đơn vị không hợp lệ "
                    "(province, district, commune, department).",
                    "load_id": load_id,
                }
            )
        frame = raw[~(bad_type | bad_code)].drop_duplicates("unit_code", keep="last")
        frame = frame.replace({"": None})[list(raw_schema.REGISTERED_UNITS)]
    with warehouse.transaction() as conn:
        conn.execute(f"delete from {RAW}.registered_units")
        conn.execute(f"delete from {RAW}.quarantine where source_name = 'units'")
        conn.load_frame(f"{RAW}.registered_units", frame, list(raw_schema.REGISTERED_UNITS))
        conn.load_frame(f"{RAW}.quarantine", _issue_frame(issues), ISSUE_COLUMNS)
    return len(frame)


def load_reference_data(warehouse: Warehouse) -> None:
    """Official units and the calendar, rewritten only when the packages' data changed."""
    for table, frame in (
        ("ref_admin_units", reference.admin_units()),
        ("ref_calendar", reference.calendar()),
    ):
        digest = hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()
        with warehouse.connect() as conn:
            current = conn.fetchall(
                f"select content_sha256 from {RAW}.reference_versions where table_name = %s",
                [table],
            )
        if current and current[0][0] == digest:
            continue
        columns = list(raw_schema.TABLES[table])
        with warehouse.transaction() as conn:
            conn.execute(f"delete from {RAW}.{table}")
            conn.load_frame(f"{RAW}.{table}", frame, columns)
            conn.execute(f"delete from {RAW}.reference_versions where table_name = %s", [table])
            conn.execute(
                f"insert into {RAW}.reference_versions values (%s, %s, %s, %s)",
                [table, digest, len(frame), datetime.now()],
            )
