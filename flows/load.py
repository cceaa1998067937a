"""Extract, validate and load: source files -> raw tables, idempotently.

A file already loaded (same path, same bytes) is not read again; a file whose bytes
changed replaces what it loaded before. Each batch commits in one transaction, so a
failure leaves the raw layer as it was.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime

import pandas as pd

from flows import raw_schema, reference, validate
from flows.settings import Source
from flows.sources import document_files, dossier_files, task_files
from flows.sources.common import FileUnreadable, decode
from flows.warehouse import Connection, Warehouse

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

    def as_dict(self) -> dict:
        return asdict(self)


def new_run_id() -> str:
    return datetime.now().strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


FILE_KINDS = {
    "dossier_files": dossier_files,
    "task_files": task_files,
    "document_files": document_files,
}


def load_file_source(warehouse: Warehouse, source: Source, run_id: str) -> SourceResult:
    """Load every new or changed file of a file source (dossiers, tasks or documents)."""
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
    todo = [f for f in files if known.get(f.relative_path) != f.sha256]
    result.files_unchanged = len(files) - len(todo)
    if not todo:
        return result

    frames, issues, file_rows = [], [], []
    now = datetime.now()
    for file in todo:
        load_id = f"{run_id}:{file.sha256[:12]}"
        record = {
            "source_name": source.name,
            "file_path": file.relative_path,
            "file_date": pd.Timestamp(file.file_date) if file.file_date else pd.NaT,
            "unit_folder": file.unit_folder,
            "file_sha256": file.sha256,
            "file_bytes": len(file.content),
            "encoding": None,
            "rows_read": 0,
            "rows_loaded": 0,
            "rows_quarantined": 0,
            "load_id": load_id,
            "run_id": run_id,
            "loaded_at": now,
        }
        file_rows.append(record)
        try:
            table = kind.read(file)
        except FileUnreadable as exc:
            result.files_quarantined += 1
            issues.append(
                issue(source.name, file.relative_path, None, None, None, exc.value, exc.rule,
                      exc.message_vi, load_id)
            )  # fmt: skip
            continue
        record["encoding"] = table.encoding
        record["rows_read"] = len(table.frame) + len(table.bad_rows)
        for row_number, line in table.bad_rows:
            issues.append(
                issue(source.name, file.relative_path, row_number, None, None, line[:500],
                      "row_unparseable", "Dòng không đọc được (số cột khác dòng tiêu đề).",
                      load_id)
            )  # fmt: skip
        table.frame["load_id"] = load_id
        frames.append(table.frame)

    text = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    batch = kind.to_typed(text) if len(text) else pd.DataFrame()
    if len(batch):
        batch["load_id"] = text["load_id"]
        batch["source_name"] = source.name
    accepted, rejected, flags = split_by_findings(batch, kind.SUITE, source.name, kind.RECORD_CODE)
    issues.extend(rejected)

    quarantined_rows = _count_by_file(issues)
    loaded_rows = accepted.groupby("file_path").size().to_dict() if len(accepted) else {}
    for record in file_rows:
        record["rows_quarantined"] = quarantined_rows.get(record["file_path"], 0)
        record["rows_loaded"] = int(loaded_rows.get(record["file_path"], 0))
        result.rows_read += record["rows_read"]
        result.rows_loaded += record["rows_loaded"]
        result.rows_quarantined += record["rows_quarantined"]
    result.rows_flagged = len({(f["file_path"], f["row_number"]) for f in flags})
    result.files_loaded = len(todo) - result.files_quarantined

    write_batch(
        warehouse,
        source_name=source.name,
        table=kind.TABLE,
        accepted=accepted,
        issues=issues,
        flags=flags,
        file_rows=file_rows,
        forget_paths=[f.relative_path for f in todo],
    )
    return result


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


def _count_by_file(issues: list[dict]) -> dict[str, int]:
    """Rows quarantined per file (a row with several problems counts once)."""
    rows: dict[str, set] = {}
    for found in issues:
        if found["row_number"] is not None:
            rows.setdefault(found["file_path"], set()).add(found["row_number"])
    return {path: len(numbers) for path, numbers in rows.items()}


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
