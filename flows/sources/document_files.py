"""Outgoing-document files (CONTRACTS §1d): parse -> typed frame."""

from __future__ import annotations

import pandas as pd

from flows.sources.common import (
    FileLayout,
    discover_unit_files,
    parse_dates,
    parse_integers,
)

COLUMNS = {
    "Số ký hiệu": "document_number",
    "Mã đơn vị": "unit_code",
    "Ngày ban hành": "issued_on",
    "Ký số": "digitally_signed",
}
HEADER_OF = {name: header for header, name in COLUMNS.items()}
REQUIRED = {"document_number", "issued_on"}
TYPES = {
    "document_number": "text",
    "unit_code": "unit",
    "issued_on": "date",
    "digitally_signed": "integer",
}
DAYS: dict[str, str] = {}
RECORD_CODE = "document_number"
SUITE = "document_files"
TABLE = "document_log"


FORMAT = FileLayout(COLUMNS, REQUIRED, discover_unit_files)
discover = FORMAT.discover
read_chunks = FORMAT.read_chunks
read = FORMAT.read


def to_typed(text: pd.DataFrame) -> pd.DataFrame:
    text, typed = FORMAT.typed_base(text)
    typed["document_number"] = text["document_number"].where(text["document_number"] != "", None)
    # The folder names the unit when the row leaves it empty.
    typed["unit_code"] = text["unit_code"].where(text["unit_code"] != "", None)
    typed["unit_code"] = typed["unit_code"].fillna(typed["unit_folder"])
    typed["issued_on"] = parse_dates(text["issued_on"])
    typed["issued_on__text"] = text["issued_on"]
    typed["digitally_signed"] = parse_integers(text["digitally_signed"])
    typed["digitally_signed__text"] = text["digitally_signed"]
    return typed
