"""Outgoing-document files (CONTRACTS §1d): parse -> typed frame."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from flows.sources.common import (
    ParsedTable,
    SourceFile,
    discover_unit_files,
    load_files,
    parse_dates,
    parse_integers,
    read_table,
    read_table_chunks,
    stripped,
    tag,
)

COLUMNS = {
    "Số ký hiệu": "document_number",
    "Mã đơn vị": "unit_code",
    "Ngày ban hành": "issued_on",
    "Ký số": "digitally_signed",
}
HEADER_OF = {name: header for header, name in COLUMNS.items()}
REQUIRED = {"document_number", "issued_on"}
RECORD_CODE = "document_number"
SUITE = "document_files"
TABLE = "document_log"


def discover(root: Path) -> list[SourceFile]:
    return load_files(root, discover_unit_files)


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
            "unit_folder": text["unit_folder"],
        },
        index=text.index,
    )
    typed["document_number"] = text["document_number"].where(text["document_number"] != "", None)
    # The folder names the unit when the row leaves it empty.
    typed["unit_code"] = text["unit_code"].where(text["unit_code"] != "", None)
    typed["unit_code"] = typed["unit_code"].fillna(typed["unit_folder"])
    typed["issued_on"] = parse_dates(text["issued_on"])
    typed["issued_on__text"] = text["issued_on"]
    typed["digitally_signed"] = parse_integers(text["digitally_signed"])
    typed["digitally_signed__text"] = text["digitally_signed"]
    return typed
