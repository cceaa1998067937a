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
from flows.sources.common import CHUNK_ROWS, FileUnreadable, decode, frame_of
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


GROUP_BYTES = 32 << 20  # files committed together: one transaction, one validation pass


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
    todo = [f for f in files if known.get(f.relative_path) != f.sha256]
    result.files_unchanged = len(files) - len(todo)
    group: list = []
    group_bytes = 0
    for file in todo:
        group.append(file)
        group_bytes += file.size
        if group_bytes >= GROUP_BYTES:
            _load_group(warehouse, source, kind, run_id, group, result)
            group, group_bytes = [], 0
    if group:
        _load_group(warehouse, source, kind, run_id, group, result)
    return result


class _Batch:
    """Rows read but not yet written: typed, validated and loaded together."""

    def __init__(self, source_name: str, kind, conn: Connection):
        self.source_name, self.kind, self.conn = source_name, kind, conn
        self.tables: list = []
        self.rows = 0
        self.loaded: dict[str, int] = {}
        self.quarantined: dict[str, set] = {}
        self.flagged: set = set()

    def add(self, table) -> None:
        self.tables.append(table)
        self.rows += len(table)
        if self.rows >= CHUNK_ROWS:
            self.flush()

    def reject(self, issues: list[dict]) -> None:
        if not issues:
            return
        for found in issues:
            if found["row_number"] is not None:
                self.quarantined.setdefault(found["file_path"], set()).add(found["row_number"])
        self.conn.load_frame(f"{RAW}.quarantine", _issue_frame(issues), ISSUE_COLUMNS)

    def flush(self) -> None:
        if not self.rows:
            self.tables = []
            return
        text = frame_of(self.tables)
        self.tables, self.rows = [], 0
        batch = self.kind.to_typed(text)
        batch["load_id"] = text["load_id"]
        batch["source_name"] = self.source_name
        accepted, rejected, flags = split_by_findings(
            batch, self.kind.SUITE, self.source_name, self.kind.RECORD_CODE
        )
        table = self.kind.TABLE
        self.conn.load_frame(f"{RAW}.{table}", accepted, list(raw_schema.TABLES[table]))
        self.reject(rejected)
        self.conn.load_frame(f"{RAW}.row_flags", _issue_frame(flags), ISSUE_COLUMNS)
        for path, count in accepted.groupby("file_path").size().items():
            self.loaded[path] = self.loaded.get(path, 0) + int(count)
        self.flagged |= {(f["file_path"], f["row_number"]) for f in flags}


def _load_group(warehouse, source: Source, kind, run_id: str, files: list, result) -> None:
    now = datetime.now()
    file_rows, unreadable = [], 0
    with warehouse.transaction() as conn:
        _forget_files(conn, source.name, kind.TABLE, [f.relative_path for f in files])
        batch = _Batch(source.name, kind, conn)
        for file in files:
            load_id = f"{run_id}:{file.sha256[:12]}"
            record = {
                "source_name": source.name,
                "file_path": file.relative_path,
                "file_date": pd.Timestamp(file.file_date) if file.file_date else pd.NaT,
                "unit_folder": file.unit_folder,
                "file_sha256": file.sha256,
                "file_bytes": file.size,
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
                for table in kind.read_chunks(file):
                    record["encoding"] = table.encoding
                    record["rows_read"] += len(table) + len(table.bad_rows)
                    batch.reject(
                        [
                            issue(source.name, file.relative_path, n, None, None, line[:500],
                                  "row_unparseable",
                                  "Dòng không đọc được (số cột khác dòng tiêu đề).", load_id)
                            for n, line in table.bad_rows
                        ]
                    )  # fmt: skip
                    table.meta["load_id"] = load_id
                    batch.add(table)
            except FileUnreadable as exc:
                unreadable += 1
                batch.reject(
                    [issue(source.name, file.relative_path, None, None, None, exc.value,
                           exc.rule, exc.message_vi, load_id)]
                )  # fmt: skip
        batch.flush()
        for record in file_rows:
            record["rows_loaded"] = batch.loaded.get(record["file_path"], 0)
            record["rows_quarantined"] = len(batch.quarantined.get(record["file_path"], ()))
            result.rows_read += record["rows_read"]
            result.rows_loaded += record["rows_loaded"]
            result.rows_quarantined += record["rows_quarantined"]
        result.rows_flagged += len(batch.flagged)
        conn.load_frame(
            f"{RAW}.loaded_files", pd.DataFrame(file_rows), list(raw_schema.LOADED_FILES)
        )
    result.files_quarantined += unreadable
    result.files_loaded += len(files) - unreadable


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
