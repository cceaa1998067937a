"""Extract, validate and load: source files -> raw tables, idempotently.

A file already loaded (same path, same bytes) is not read again; a file whose bytes
changed replaces what it loaded before. Each batch commits in one transaction, so a
failure leaves the raw layer as it was.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path

import pandas as pd

from flows import failpoints, progress, raw_schema, reference, refine, validate
from flows.settings import Source
from flows.sources import document_files, dossier_files, task_files
from flows.sources.common import RECORD_CHARS, FileUnreadable, copy_blocks, decode
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
    # seconds per step, summed over groups: assemble (read, hash, concatenate files),
    # land (DuckDB reads them), refine (type, validate), export, write (the transaction)
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


GROUP_BYTES = 32 << 20  # files committed together: one transaction, one validation pass


def load_file_source(
    warehouse: Warehouse, source: Source, run_id: str, until: date | None = None
) -> SourceResult:
    """Load every new or changed file of a file source (dossiers, tasks or documents).

    Files are committed in groups of about GROUP_BYTES, each group in one transaction
    with its raw.loaded_files rows: a crash loses no committed file and the rerun picks
    up exactly the files not committed. Big files stream in bounded blocks. With `until`
    (a backfill replaying the nights), files dated after that day wait for their night.
    """
    kind = FILE_KINDS[source.kind]
    result = SourceResult(source.name, source.kind)
    files = kind.FORMAT.listing(source.path)
    if until is not None:
        files = [f for f in files if f.file_date is None or f.file_date <= until]
    result.files_seen = len(files)
    with warehouse.connect() as conn:
        known = {
            path: (sha, (size, mtime))
            for path, sha, size, mtime in conn.fetchall(
                f"select file_path, file_sha256, file_bytes, file_mtime_ns from {RAW}.loaded_files "
                "where source_name = %s",
                [source.name],
            )
        }

    # A known file of the same size and modification time is not read again (a night
    # costs its new files, not the history); only the others become SourceFiles.
    todo = []
    for listed in files:
        sha, signature = known.get(listed.relative_path, (None, None))
        if signature == listed.signature:
            continue
        file = listed.source_file()
        if sha is None or sha != file.sha256:  # new (hashed while assembled), or changed bytes
            todo.append(file)
    changed = {f.relative_path for f in todo if f.relative_path in known}
    result.files_unchanged = len(files) - len(todo)
    progress.total(len(todo), "files")
    groups, group, group_bytes = [], [], 0
    for file in todo:
        group.append(file)
        group_bytes += file.signature[0]
        if group_bytes >= GROUP_BYTES:
            groups.append(group)
            group, group_bytes = [], 0
    if group:
        groups.append(group)
    with tempfile.TemporaryDirectory(prefix="cchc-load-") as work:
        batches = (
            _Batch(source, kind, run_id, g, Path(work) / str(n), changed)
            for n, g in enumerate(groups)
        )
        if warehouse.kind == "duckdb":
            # the warehouse refines in place; only the Python reading runs ahead
            for batch in _ahead(_Batch.assemble, batches):
                with warehouse.transaction() as conn:
                    batch.refine(conn.raw)
                    batch.write_duckdb(conn)
                    failpoints.hit("load.group_written")  # written, not yet committed
                batch.done(result)
        else:
            # three groups in flight: one read in Python, the next refined in a private
            # DuckDB, the one before taken by PostgreSQL
            for batch in _ahead(_Batch.refine_for_copy, _ahead(_Batch.assemble, batches)):
                with warehouse.transaction() as conn:
                    batch.write_postgres(conn)
                    failpoints.hit("load.group_written")
                batch.done(result)
    return result


def _ahead(step, items):
    """`step(item)` for each item, the next one computed in a thread while the caller
    works on the current one (DuckDB, hashing and file reads release the GIL)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for item in items:
            future = pool.submit(step, item)
            if pending is not None:
                yield pending.result()
            pending = future
        if pending is not None:
            yield pending.result()


# where a group's findings go: critical ones quarantine the row, the rest flag it
ISSUE_TARGETS = (("quarantine", "= 'critical'"), ("row_flags", "<> 'critical'"))

LANDING, FILES, TYPED, FINDINGS, RULES, REJECTED, REJECTS = (
    "cchc_landing",
    "cchc_files",
    "cchc_typed",
    "cchc_findings",
    "cchc_rules",
    "cchc_rejected",
    "cchc_rejects",
)  # temporary tables: one group's working set, gone with its connection


class _Batch:
    """One group of files on its way in: assembled, landed and refined in DuckDB, written.

    Plain CSVs are concatenated, each line led by its file's id, into one CSV per header
    layout, which DuckDB's reader lands in one parallel pass (row number = place in the
    file). Anything else (XLSX, quoting, odd encodings, ragged rows) goes through the
    careful row reader, which numbers rows itself and quarantines lines it cannot split.
    """

    def __init__(self, source: Source, kind, run_id: str, files, work: Path, changed):
        self.source, self.kind, self.files, self.work = source, kind, files, work
        self.names = list(kind.COLUMNS.values())
        self.forget = [f.relative_path for f in files if f.relative_path in changed]
        now = datetime.now()
        self.records = [
            {
                "file_id": file_id,
                "source_name": source.name,
                "file_path": file.relative_path,
                "file_date": pd.Timestamp(file.file_date) if file.file_date else pd.NaT,
                "unit_folder": file.unit_folder,
                "encoding": None,
                "load_id": None,
                "run_id": run_id,
                "loaded_at": now,
            }
            for file_id, file in enumerate(files)
        ]
        self.run_id = run_id
        self.layouts: dict[tuple[str, ...], Path] = {}  # header layout -> assembled CSV
        self.careful: Path | None = None
        self.parse_issues: list[dict] = []
        self.parse_bad: dict[int, int] = {}
        self.unreadable = 0
        self.counts: dict = {}
        self.accepted_csv: Path | None = None
        self.issues: dict[str, pd.DataFrame] = {}
        self.seconds: dict[str, float] = {}

    # -- Python: read each file once, hash it, and write what DuckDB will read
    def assemble(self) -> _Batch:
        started = time.perf_counter()
        self.work.mkdir(parents=True)
        outputs: dict[tuple[str, ...], object] = {}
        careful = []
        try:
            for file_id, file in enumerate(self.files):
                plan = self.kind.FORMAT.copy_plan(file)
                record = self.records[file_id]
                record.update(file_sha256=file.sha256, file_bytes=file.size,
                              file_mtime_ns=file.signature[1])  # fmt: skip
                record["load_id"] = f"{self.run_id}:{file.sha256[:12]}"
                if plan is None:
                    careful.append(file_id)
                    continue
                record["encoding"] = "utf-8"
                out = outputs.get(plan.columns)
                if out is None:
                    path = self.work / f"layout{len(outputs)}.csv"
                    self.layouts[plan.columns] = path
                    out = outputs[plan.columns] = open(path, "wb")  # noqa: SIM115
                for block in copy_blocks(file, plan, b"%d," % file_id):
                    out.write(block)
        finally:
            for out in outputs.values():
                out.close()
        self.careful = self._assemble_carefully(careful, "careful.csv")
        self.seconds["assemble"] = time.perf_counter() - started
        return self

    def _assemble_carefully(self, file_ids: list[int], name: str) -> Path:
        path = self.work / name
        with open(path, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
            for file_id in file_ids:
                file, record = self.files[file_id], self.records[file_id]
                try:
                    for table in self.kind.read_chunks(file):
                        record["encoding"] = table.encoding
                        self.parse_bad[file_id] = self.parse_bad.get(file_id, 0) + len(
                            table.bad_rows
                        )
                        self.parse_issues += [
                            issue(self.source.name, file.relative_path, n, None, None,
                                  line[:500], "row_unparseable",
                                  "Dòng không đọc được (số cột khác dòng tiêu đề, dòng quá "
                                  "dài hoặc có ký tự NUL).",
                                  record["load_id"])
                            for n, line in table.bad_rows
                        ]  # fmt: skip
                        writer.writerows(
                            [file_id, number, *row]
                            for number, row in zip(table.numbers, table.records, strict=True)
                        )
                except FileUnreadable as exc:
                    self.unreadable += 1
                    self.parse_issues.append(
                        issue(self.source.name, file.relative_path, None, None, None,
                              exc.value, exc.rule, exc.message_vi, record["load_id"])
                    )  # fmt: skip
        return path

    # -- DuckDB: land the assembled text, type it and validate it set-based
    def refine(self, con) -> None:
        """Fill this connection's temporary tables TYPED, FINDINGS and REJECTED."""
        started = time.perf_counter()
        columns = ", ".join(f"{c} varchar" for c in self.names)
        con.execute(f"create temp table {LANDING} (file_id integer, row_number integer, {columns})")
        redo: set[int] = set()
        for layout, path in self.layouts.items():
            if not self._land_csv(con, path, ["file_id", *layout], rejects=True):
                continue  # header-only files: nothing landed, no rejects table
            redo |= {
                int(line.split(",", 1)[0])
                for (line,) in con.execute(f"select csv_line from {REJECTS}").fetchall()
            }
        if redo:
            # a plain-looking file whose rows do not all split: read it carefully instead
            log.warning("source %s: %d file(s) read row by row", self.source.name, len(redo))
            con.execute(f"delete from {LANDING} where file_id in ({', '.join(map(str, redo))})")
            path = self._assemble_carefully(sorted(redo), "redo.csv")
            self._land_csv(con, path, ["file_id", "row_number", *self.names])
        if self.careful is not None:
            self._land_csv(con, self.careful, ["file_id", "row_number", *self.names])
        self.seconds["land"] = time.perf_counter() - started
        started = time.perf_counter()
        self.counts = _refine(con, self.source.name, self.kind, pd.DataFrame(self.records))
        self.seconds["refine"] = time.perf_counter() - started

    def _land_csv(self, con, path: Path, columns: list[str], *, rejects: bool = False) -> bool:
        """Land one assembled CSV; False when it holds no line."""
        if not path.exists() or not path.stat().st_size:
            return False
        types = ", ".join(
            f"'{c}': '{'INTEGER' if c in ('file_id', 'row_number') else 'VARCHAR'}'"
            for c in columns
        )
        # a plain file's line longer than DuckDB's default limit (2 MiB) is rejected and
        # read carefully; the careful reader's records (up to RECORD_CHARS characters, as
        # quoted UTF-8) always fit
        options = (
            f", store_rejects = true, rejects_table = '{REJECTS}', rejects_scan = '{REJECTS}_scan'"
            if rejects
            else f", max_line_size = {8 * RECORD_CHARS + (1 << 20)}"
        )
        con.execute(
            f"insert into {LANDING} ({', '.join(columns)}) select * from read_csv('{path}', "
            f"header = false, auto_detect = false, columns = {{{types}}}, delim = ',', "
            "quote = '\"', escape = '\"', new_line = '\\n', strict_mode = true, "
            f"null_padding = false, parallel = true{options})"
        )
        return True

    def refine_for_copy(self) -> _Batch:
        """For PostgreSQL: refine in a private DuckDB, export what COPY reads."""
        import duckdb

        config = {"memory_limit": "1GB", "temp_directory": str(self.work / "spill")}
        with duckdb.connect(config=config) as con:
            con.execute("set enable_progress_bar = false")
            self.refine(con)
            started = time.perf_counter()
            self.accepted_csv = self.work / "accepted.csv"
            con.execute(
                f"copy ({self._accepted_select()}) to '{self.accepted_csv}' "
                "(format csv, header false)"
            )
            for target, severity in ISSUE_TARGETS:
                self.issues[target] = con.execute(self._issues_select(target, severity)).df()
            self.seconds["export"] = time.perf_counter() - started
        return self

    def _accepted_select(self) -> str:
        columns = [c for c in raw_schema.TABLES[self.kind.TABLE] if c != "source_name"]
        return (
            f"select '{self.source.name.replace(chr(39), chr(39) * 2)}' as source_name, "
            f"{', '.join(columns)} from {TYPED} t where not exists (select 1 from {REJECTED} q "
            "where q.file_id = t.file_id and q.row_number = t.row_number)"
        )

    def _issues_select(self, target: str, severity: str) -> str:
        """Quarantine (critical) or flags (the rest, on rows not quarantined) of the group."""
        name = self.source.name.replace("'", "''")
        select = (
            f"select '{name}' as source_name, f.file_path, f.row_number, f.record_code, "
            "r.column_name, substr(f.value, 1, 500) as value, r.rule, r.message_vi, f.load_id "
            f"from {FINDINGS} f join {RULES} r on r.rule_no = f.rule_no "
            f"where r.severity {severity}"
        )
        if target == "row_flags":
            select += (
                f" and not exists (select 1 from {REJECTED} q "
                "where q.file_id = f.file_id and q.row_number = f.row_number)"
            )
        return select

    # -- the warehouse: everything of the group in the caller's one transaction
    def write_duckdb(self, conn: Connection) -> None:
        started = time.perf_counter()
        _forget_files(conn, self.source.name, self.kind.TABLE, self.forget)
        columns = ", ".join(raw_schema.TABLES[self.kind.TABLE])
        conn.execute(f"insert into {RAW}.{self.kind.TABLE} ({columns}) {self._accepted_select()}")
        for target, severity in ISSUE_TARGETS:
            conn.execute(
                f"insert into {RAW}.{target} ({', '.join(ISSUE_COLUMNS)}) "
                + self._issues_select(target, severity)
            )
        self._write_files(conn)
        self.seconds["write"] = time.perf_counter() - started

    def write_postgres(self, conn: Connection) -> None:
        started = time.perf_counter()
        _forget_files(conn, self.source.name, self.kind.TABLE, self.forget)
        conn.copy_file(
            f"{RAW}.{self.kind.TABLE}", list(raw_schema.TABLES[self.kind.TABLE]), self.accepted_csv
        )
        for target, frame in self.issues.items():
            conn.load_frame(f"{RAW}.{target}", frame, ISSUE_COLUMNS)
        self._write_files(conn)
        self.seconds["write"] = time.perf_counter() - started

    def _write_files(self, conn: Connection) -> None:
        conn.load_frame(f"{RAW}.quarantine", _issue_frame(self.parse_issues), ISSUE_COLUMNS)
        for record in self.records:
            read, loaded, rejected = self.counts.get(record["file_id"], (0, 0, 0))
            bad = self.parse_bad.get(record["file_id"], 0)
            record.update(rows_read=read + bad, rows_loaded=loaded, rows_quarantined=rejected + bad)
        conn.load_frame(
            f"{RAW}.loaded_files", pd.DataFrame(self.records), list(raw_schema.LOADED_FILES)
        )

    def done(self, result: SourceResult) -> None:
        """Count the committed group into the source's result; drop its working files."""
        shutil.rmtree(self.work, ignore_errors=True)
        for record in self.records:
            result.rows_read += record["rows_read"]
            result.rows_loaded += record["rows_loaded"]
            result.rows_quarantined += record["rows_quarantined"]
        result.rows_flagged += self.counts.get("flagged", 0)
        result.files_quarantined += self.unreadable
        result.files_loaded += len(self.files) - self.unreadable
        progress.advance(len(self.files))
        for step, seconds in self.seconds.items():
            result.seconds[step] = result.seconds.get(step, 0.0) + seconds


def _refine(con, source_name: str, kind, files: pd.DataFrame) -> dict:
    """Type and validate the landed rows set-based (TYPED, FINDINGS, REJECTED).

    Returns {file_id: (rows read, rows loaded, rows quarantined), "flagged": rows flagged}.
    """
    rules = refine.rules(kind.SUITE, kind)
    con.register("cchc_files_frame", files[["file_id", "file_path", "file_date",
                                             "unit_folder", "load_id"]])  # fmt: skip
    con.execute(
        f"create temp table {FILES} as select cast(file_id as integer) as file_id, file_path, "
        "cast(file_date as date) as file_date, unit_folder, load_id from cchc_files_frame"
    )
    con.unregister("cchc_files_frame")
    con.execute(
        f"create temp table {RULES} (rule_no integer, rule varchar, severity varchar, "
        "column_name varchar, message_vi varchar)"
    )
    con.executemany(
        f"insert into {RULES} values (?, ?, ?, ?, ?)",
        [(r.number, r.rule, r.severity, r.column_name, r.message_vi) for r in rules],
    )
    # a view: typing is cheaper to repeat (findings, then the accepted rows) than to store
    con.execute(f"create temp view {TYPED} as {refine.typed_select(kind, LANDING, FILES)}")
    found = refine.findings_select(TYPED, kind.RECORD_CODE, rules)
    con.execute(f"create temp table {FINDINGS} as {found}")
    con.execute(
        f"create temp table {REJECTED} as select distinct f.file_id, f.row_number "
        f"from {FINDINGS} f join {RULES} r on r.rule_no = f.rule_no where r.severity = 'critical'"
    )
    counts: dict = {}
    for file_id, read, rejected in con.execute(
        f"select r.file_id, r.n, coalesce(q.n, 0) from (select file_id, count(*) as n "
        f"from {LANDING} group by file_id) r left join (select file_id, count(*) as n "
        f"from {REJECTED} group by file_id) q on q.file_id = r.file_id"
    ).fetchall():
        counts[file_id] = (int(read), int(read) - int(rejected), int(rejected))
    counts["flagged"] = con.execute(
        f"select count(*) from (select distinct file_id, row_number from {FINDINGS} f "
        f"where not exists (select 1 from {REJECTED} q where q.file_id = f.file_id "
        "and q.row_number = f.row_number)) x"
    ).fetchall()[0][0]
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
        failpoints.hit("load.group_written")


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
    for target in (table, "quarantine", "row_flags", "loaded_files", "file_accounting"):
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
    # the units decide the rollups of every period, so they are part of what a build is
    # built from: a change (a unit registered, a parent corrected) rebuilds whole
    digest = hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()
    with warehouse.transaction() as conn:
        conn.execute(f"delete from {RAW}.registered_units")
        conn.execute(f"delete from {RAW}.quarantine where source_name = 'units'")
        conn.load_frame(f"{RAW}.registered_units", frame, list(raw_schema.REGISTERED_UNITS))
        conn.load_frame(f"{RAW}.quarantine", _issue_frame(issues), ISSUE_COLUMNS)
        if _recorded_digest(conn, "registered_units") != digest:  # a rerun writes nothing
            _record_version(conn, "registered_units", digest, len(frame))
    return len(frame)


def load_reference_data(warehouse: Warehouse) -> None:
    """Official units and the calendar, rewritten only when the packages' data changed."""
    for table, frame in (
        ("ref_admin_units", reference.admin_units()),
        ("ref_calendar", reference.calendar()),
    ):
        digest = hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()
        with warehouse.connect() as conn:
            if _recorded_digest(conn, table) == digest:
                continue
        columns = list(raw_schema.TABLES[table])
        with warehouse.transaction() as conn:
            conn.execute(f"delete from {RAW}.{table}")
            conn.load_frame(f"{RAW}.{table}", frame, columns)
            _record_version(conn, table, digest, len(frame))


def _recorded_digest(conn: Connection, table: str) -> str | None:
    rows = conn.fetchall(
        f"select content_sha256 from {RAW}.reference_versions where table_name = %s", [table]
    )
    return rows[0][0] if rows else None


def _record_version(conn: Connection, table: str, digest: str, rows: int) -> None:
    """What a reference table holds, for the build fingerprint (flows.transform)."""
    conn.execute(f"delete from {RAW}.reference_versions where table_name = %s", [table])
    conn.execute(
        f"insert into {RAW}.reference_versions values (%s, %s, %s, %s)",
        [table, digest, rows, datetime.now()],
    )
