"""Task tracking files (CONTRACTS §1c): parse -> typed frame."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from flows.sources.common import (
    ParsedTable,
    SourceFile,
    discover_dated_files,
    load_files,
    parse_dates,
    parse_datetimes,
    read_table,
    read_table_chunks,
    stripped,
    tag,
)

COLUMNS = {
    "Mã nhiệm vụ": "task_id",
    "Trích yếu": "summary",
    "Cơ quan giao": "assigned_by",
    "Đơn vị chủ trì": "department_code",
    "Ngày giao": "assigned_on",
    "Hạn hoàn thành": "deadline_on",
    "Ngày hoàn thành": "completed_on",
    "Ngày cập nhật": "updated_at",
}
HEADER_OF = {name: header for header, name in COLUMNS.items()}
REQUIRED = {"task_id", "assigned_on", "deadline_on"}
DATE_COLUMNS = ["assigned_on", "deadline_on", "completed_on"]
TEXT_COLUMNS = ["task_id", "summary", "assigned_by", "department_code"]
RECORD_CODE = "task_id"
SUITE = "task_files"
TABLE = "task_log"


def discover(root: Path) -> list[SourceFile]:
    return load_files(root, discover_dated_files)


def read_chunks(file: SourceFile) -> Iterator[ParsedTable]:
    """The file's rows a bounded chunk at a time (the loader's way: memory stays flat)."""
    for table in read_table_chunks(file, COLUMNS, REQUIRED):
        yield tag(table, file)


def read(file: SourceFile) -> ParsedTable:
    return tag(read_table(file, COLUMNS, REQUIRED), file)


def to_typed(text: pd.DataFrame) -> pd.DataFrame:
    text = stripped(text, COLUMNS.values())
    typed = pd.DataFrame(
        {
            "file_path": text["file_path"],
            "file_date": pd.to_datetime(text["file_date"]),
            "row_number": text["row_number"].astype("int64"),
        },
        index=text.index,
    )
    for col in TEXT_COLUMNS:
        typed[col] = text[col].where(text[col] != "", None)
    for col in DATE_COLUMNS:
        typed[col] = parse_dates(text[col])
        typed[f"{col}__text"] = text[col]
    typed["updated_at"] = parse_datetimes(text["updated_at"])
    typed["updated_at__text"] = text["updated_at"]
    return typed
