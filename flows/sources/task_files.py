"""Task tracking files (CONTRACTS §1c): parse -> typed frame."""

from __future__ import annotations

import pandas as pd

from flows.sources.common import (
    FileLayout,
    discover_dated_files,
    parse_dates,
    parse_datetimes,
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
TYPES = {
    name: "text" if name in TEXT_COLUMNS else "date" if name in DATE_COLUMNS else "datetime"
    for name in COLUMNS.values()
}
DAYS: dict[str, str] = {}
RECORD_CODE = "task_id"
SUITE = "task_files"
TABLE = "task_log"


FORMAT = FileLayout(COLUMNS, REQUIRED, discover_dated_files)
discover = FORMAT.discover
read_chunks = FORMAT.read_chunks
read = FORMAT.read


def to_typed(text: pd.DataFrame) -> pd.DataFrame:
    text, typed = FORMAT.typed_base(text)
    for col in TEXT_COLUMNS:
        typed[col] = text[col].where(text[col] != "", None)
    for col in DATE_COLUMNS:
        typed[col] = parse_dates(text[col])
        typed[f"{col}__text"] = text[col]
    typed["updated_at"] = parse_datetimes(text["updated_at"])
    typed["updated_at__text"] = text["updated_at"]
    return typed
