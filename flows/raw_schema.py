"""The raw layer: tables the loader writes and dbt reads (source `raw`).

One definition for both warehouses; types are ones DuckDB and PostgreSQL share.
"""

RAW_SCHEMA = "raw"

# Accepted rows of dossier log files (CONTRACTS §1a), one per source row, typed.
DOSSIER_LOG = {
    "source_name": "varchar not null",
    "file_path": "varchar not null",  # relative to the source path: <unit_code>/<YYYY-MM-DD>.csv
    "file_date": "date",  # the date in the file name
    "row_number": "integer not null",  # line in the file, header = 1, as a spreadsheet shows it
    "dossier_code": "varchar not null",
    "unit_code": "varchar not null",
    "procedure_code": "varchar",
    "channel": "integer not null",
    "received_at": "timestamp not null",
    "due_at": "timestamp",
    "finished_at": "timestamp",
    "returned_at": "timestamp",
    "status_code": "integer not null",
    "supplement_count": "integer",
    "fee_vnd": "bigint",
    "paid_online": "integer",
    "digitized": "integer",
    "e_result": "integer",
    "reused": "integer",
    "apology_at": "timestamp",
    "applicant_name": "varchar",  # personal data: raw layer only
    "applicant_id": "varchar",  # personal data: raw layer only
    "updated_at": "timestamp",
    "load_id": "varchar not null",
}

# Accepted rows of task tracking files (CONTRACTS §1c), one per source row.
TASK_LOG = {
    "source_name": "varchar not null",
    "file_path": "varchar not null",
    "file_date": "date",
    "row_number": "integer not null",
    "task_id": "varchar not null",
    "summary": "varchar",
    "assigned_by": "varchar",
    "department_code": "varchar",
    "assigned_on": "date not null",
    "deadline_on": "date not null",
    "completed_on": "date",
    "updated_at": "timestamp",
    "load_id": "varchar not null",
}

# Accepted rows of outgoing-document files (CONTRACTS §1d), one per document issued.
DOCUMENT_LOG = {
    "source_name": "varchar not null",
    "file_path": "varchar not null",
    "file_date": "date",
    "row_number": "integer not null",
    "document_number": "varchar not null",
    "unit_code": "varchar not null",
    "issued_on": "date not null",
    "digitally_signed": "integer",
    "load_id": "varchar not null",
}

# Per API source: the latest change time already loaded (CONTRACTS §1b `updated_since`).
API_WATERMARKS = {
    "source_name": "varchar not null",
    "watermark": "timestamp not null",
    "records_loaded": "bigint not null",
    "run_id": "varchar not null",
    "updated_at": "timestamp not null",
}

# Every file seen, with its content hash: a file already loaded is not loaded again.
LOADED_FILES = {
    "source_name": "varchar not null",
    "file_path": "varchar not null",
    "file_date": "date",
    "unit_folder": "varchar",
    "file_sha256": "varchar not null",
    "file_bytes": "bigint not null",
    # the file's modification time when loaded: same size and time, the file is not reread
    "file_mtime_ns": "bigint",
    "encoding": "varchar",
    "rows_read": "integer not null",
    "rows_loaded": "integer not null",
    "rows_quarantined": "integer not null",
    "load_id": "varchar not null",
    "run_id": "varchar not null",
    "loaded_at": "timestamp not null",
}

# What the raw layer held of each loaded file when the first audit after its load counted
# it (flows.audit): a file's rows change only when a new version replaces the file, which
# removes this row with the file's others, so later audits count only the new files.
FILE_ACCOUNTING = {
    "source_name": "varchar not null",
    "file_path": "varchar not null",
    "load_id": "varchar not null",
    "rows_present": "bigint not null",  # rows of the file in the log tables
    "rows_quarantined_present": "bigint not null",  # distinct rows of it in quarantine
    "run_id": "varchar not null",  # the run whose audit counted it
}

# Rows (or whole files, row_number null) kept out of the warehouse, and why.
QUARANTINE = {
    "source_name": "varchar not null",
    "file_path": "varchar not null",
    "row_number": "integer",
    "record_code": "varchar",  # the dossier code when the row had one
    "column_name": "varchar",
    "value": "varchar",
    "rule": "varchar not null",
    "message_vi": "varchar not null",
    "load_id": "varchar not null",
}

# Suspicious but real: loaded, and reported.
ROW_FLAGS = {
    "source_name": "varchar not null",
    "file_path": "varchar not null",
    "row_number": "integer",
    "record_code": "varchar",
    "column_name": "varchar",
    "value": "varchar",
    "rule": "varchar not null",
    "message_vi": "varchar not null",
    "load_id": "varchar not null",
}

# CONTRACTS §1e, replaced on every run from the sources file's `units:` CSV.
REGISTERED_UNITS = {
    "unit_code": "varchar not null",
    "unit_name": "varchar not null",
    "unit_type": "varchar not null",
    "parent_unit_code": "varchar",
}

# Official units from the `vietnamadminunits` package (legacy and post-2025 lists).
REF_ADMIN_UNITS = {
    "unit_code": "varchar not null",
    "unit_name": "varchar not null",
    "unit_type": "varchar not null",  # province | district | commune
    "parent_unit_code": "varchar",
    "province_code": "varchar not null",
    "valid_from": "date",
    "valid_to": "date",
    "successor_unit_code": "varchar",
}

# Working-day calendar from the `holidays` package (country VN).
REF_CALENDAR = {
    "calendar_date": "date not null",
    "is_working_day": "boolean not null",
    "holiday_name": "varchar",
}

# Which version of each reference table is loaded, so unchanged data is not rewritten.
REFERENCE_VERSIONS = {
    "table_name": "varchar not null",
    "content_sha256": "varchar not null",
    "row_count": "integer not null",
    "loaded_at": "timestamp not null",
}

# What the last successful dbt build was built from (flows.transform): when the project
# or the reference data differ, incremental models are rebuilt whole.
BUILD_STATE = {
    "fingerprint": "varchar not null",
    "run_id": "varchar not null",
    "built_at": "timestamp not null",
    "as_of": "date",  # an earlier as-of date reopens closed periods: rebuild whole
}

TABLES = {
    "dossier_log": DOSSIER_LOG,
    "task_log": TASK_LOG,
    "document_log": DOCUMENT_LOG,
    "api_watermarks": API_WATERMARKS,
    "loaded_files": LOADED_FILES,
    "file_accounting": FILE_ACCOUNTING,
    "quarantine": QUARANTINE,
    "row_flags": ROW_FLAGS,
    "registered_units": REGISTERED_UNITS,
    "ref_admin_units": REF_ADMIN_UNITS,
    "ref_calendar": REF_CALENDAR,
    "reference_versions": REFERENCE_VERSIONS,
    "build_state": BUILD_STATE,
}


# PostgreSQL indexes on the change log, by dossier and by load: a night reads the rows of
# the dossiers it touches (latest state) and the rows it loaded (the touched list, the
# unknown-reference flags) through them instead of the whole history. Built in one sorted
# pass once the first load is in (flows.warehouse.PostgresWarehouse.index_raw), not grown
# row by row through it; later loads maintain them. DuckDB scans, so it needs none.
POSTGRES_INDEXES = {
    "dossier_log__dossier": ("dossier_log", "unit_code, dossier_code"),
    "dossier_log__load": ("dossier_log", "load_id text_pattern_ops"),  # also `like 'run:%'`
}


def create_statements() -> list[str]:
    statements = [f"create schema if not exists {RAW_SCHEMA}"]
    for name, columns in TABLES.items():
        cols = ",\n    ".join(f"{col} {typ}" for col, typ in columns.items())
        statements.append(f"create table if not exists {RAW_SCHEMA}.{name} (\n    {cols}\n)")
    return statements
