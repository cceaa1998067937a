"""Parsing shared by every file source: discovery, decoding, headers, dates, numbers."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import pandas as pd

DATE_FORMATS = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y")
FILE_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})\.(csv|xlsx)$", re.IGNORECASE)
UNIT_FOLDER = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.\-_]{0,39}$")


class FileUnreadable(ValueError):
    """The whole file cannot be read as a table; it is quarantined as one."""

    def __init__(self, rule: str, message_vi: str, value: str | None = None):
        super().__init__(message_vi)
        self.rule = rule
        self.message_vi = message_vi
        self.value = value


@dataclass
class SourceFile:
    path: Path
    relative_path: str  # as stored in the warehouse, with forward slashes
    file_date: date | None
    unit_folder: str | None
    content: bytes = field(repr=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass
class ParsedTable:
    """The text cells of a file, by canonical column name, with spreadsheet row numbers."""

    frame: pd.DataFrame  # all columns str (empty string for empty), plus row_number
    encoding: str
    bad_rows: list[tuple[int, str]]  # (row_number, raw line) rows that did not parse


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def header_key(text: str) -> str:
    """Headers match whatever their case, spacing or Unicode normal form."""
    return " ".join(nfc(text).replace("\ufeff", "").casefold().split())


def discover_unit_files(root: Path) -> list[tuple[Path, str | None, date | None]]:
    """Files laid out as <root>/<unit_code>/<YYYY-MM-DD>.csv|xlsx, in a stable order.

    Only direct children of the source folder are read, and only folders whose
    names look like unit codes: nothing outside the source folder is ever touched.
    """
    found = []
    if not root.is_dir():
        raise FileNotFoundError(f"source folder not found: {root}")
    for unit_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        if not UNIT_FOLDER.match(unit_dir.name):
            continue
        for file in sorted(unit_dir.iterdir()):
            match = FILE_NAME.match(file.name)
            if file.is_file() and match:
                found.append((file, unit_dir.name, _parse_iso_date(match.group(1))))
    return found


def discover_dated_files(root: Path) -> list[tuple[Path, None, date | None]]:
    """Files laid out as <root>/<YYYY-MM-DD>.csv|xlsx (one stream, no unit folders)."""
    if not root.is_dir():
        raise FileNotFoundError(f"source folder not found: {root}")
    found = []
    for file in sorted(root.iterdir()):
        match = FILE_NAME.match(file.name)
        if file.is_file() and not file.is_symlink() and match:
            found.append((file, None, _parse_iso_date(match.group(1))))
    return found


def load_files(root: Path, layout) -> list[SourceFile]:
    """Read every file a layout finds; paths are kept relative to the source folder."""
    return [
        SourceFile(
            path=path,
            relative_path=path.relative_to(root).as_posix(),
            file_date=file_date,
            unit_folder=unit_folder,
            content=path.read_bytes(),
        )
        for path, unit_folder, file_date in layout(root)
    ]


def tag(table: ParsedTable, file: SourceFile) -> ParsedTable:
    """Mark each read row with the file it came from."""
    table.frame["file_path"] = file.relative_path
    table.frame["file_date"] = pd.Timestamp(file.file_date) if file.file_date else pd.NaT
    table.frame["unit_folder"] = file.unit_folder
    return table


def parse_dates(text: pd.Series) -> pd.Series:
    """dd/mm/yyyy (a time part, if any, is dropped) -> dates as midnight timestamps."""
    return parse_datetimes(text).dt.normalize()


def _parse_iso_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def decode(content: bytes) -> tuple[str, str]:
    """UTF-8 (BOM optional) or legacy Windows-1258, returned as NFC text."""
    if b"\x00" in content[:4096]:
        raise FileUnreadable("file_not_text", "Tệp không phải văn bản CSV (có ký tự nhị phân).")
    if content.startswith(b"\xef\xbb\xbf"):
        return nfc(content[3:].decode("utf-8")), "utf-8-sig"
    try:
        return nfc(content.decode("utf-8")), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return nfc(content.decode("cp1258")), "cp1258"
    except UnicodeDecodeError as exc:
        raise FileUnreadable(
            "file_encoding", "Không đọc được bảng mã của tệp (không phải UTF-8 hay Windows-1258)."
        ) from exc


def read_table(file: SourceFile, columns: dict[str, str], required: set[str]) -> ParsedTable:
    """Read a CSV or XLSX file into text cells keyed by canonical column names.

    `columns` maps each contract header to its canonical name; extra headers are ignored.
    """
    if file.path.suffix.lower() == ".xlsx":
        rows, encoding = _xlsx_rows(file.content), "xlsx"
    else:
        text, encoding = decode(file.content)
        rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise FileUnreadable("file_empty", "Tệp rỗng, không có dòng tiêu đề.")

    wanted = {header_key(h): name for h, name in columns.items()}
    positions: dict[str, int] = {}
    for i, cell in enumerate(rows[0]):
        name = wanted.get(header_key(cell))
        if name and name not in positions:
            positions[name] = i
    missing = [h for h, name in columns.items() if name in required and name not in positions]
    if missing:
        raise FileUnreadable(
            "missing_columns",
            "Tệp thiếu cột bắt buộc: " + ", ".join(missing) + ".",
            value="|".join(nfc(c) for c in rows[0]),
        )

    width = len(rows[0])
    records, bad_rows = [], []
    for offset, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # blank lines are not records
        if len(row) != width:
            bad_rows.append((offset, ",".join(row)))
            continue
        record = {name: nfc(row[i]).strip() for name, i in positions.items()}
        record["row_number"] = offset
        records.append(record)
    frame = pd.DataFrame.from_records(records, columns=[*positions, "row_number"])
    for name in columns.values():
        if name not in frame.columns:
            frame[name] = ""
    return ParsedTable(frame=frame, encoding=encoding, bad_rows=bad_rows)


def _xlsx_rows(content: bytes) -> list[list[str]]:
    from python_calamine import CalamineWorkbook

    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(content))
        sheet = workbook.get_sheet_by_index(0)
        values = sheet.to_python(skip_empty_area=False)
    except Exception as exc:  # calamine raises its own error types for corrupt files
        raise FileUnreadable("file_corrupt", "Tệp Excel bị hỏng, không đọc được.") from exc
    return [[_cell_text(v) for v in row] for row in values]


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%d/%m/%Y %H:%M:%S")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parse_datetimes(text: pd.Series) -> pd.Series:
    """dd/mm/yyyy[ HH:MM[:SS]] -> timestamps; anything else (or impossible) -> NaT."""
    result = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    for fmt in DATE_FORMATS:
        todo = result.isna() & (text != "")
        if not todo.any():
            break
        result[todo] = pd.to_datetime(text[todo], format=fmt, errors="coerce")
    return result


def parse_integers(text: pd.Series) -> pd.Series:
    """Whole numbers only; '2.0' or 'abc' -> NA (pandas nullable Int64)."""
    cleaned = text.where(text.str.fullmatch(r"[+-]?\d{1,15}"), None)
    return pd.to_numeric(cleaned, errors="coerce").astype("Int64")


def parse_amounts(text: pd.Series) -> pd.Series:
    """VND amounts: plain digits or with '.' thousands separators ('50.000')."""
    grouped = text.str.fullmatch(r"\d{1,3}(\.\d{3})+")
    plain = text.str.fullmatch(r"\d{1,15}")
    cleaned = text.where(grouped | plain, None).str.replace(".", "", regex=False)
    return pd.to_numeric(cleaned, errors="coerce").astype("Int64")
