"""Parsing shared by every file source: discovery, decoding, headers, dates, numbers."""

from __future__ import annotations

import codecs
import csv
import functools
import hashlib
import io
import itertools
import operator
import os
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import NamedTuple

import pandas as pd

DATE_FORMATS = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y")
# Years a date may name; anything outside is no real administrative record.
YEARS = (1900, 2099)
FILE_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})\.(csv|xlsx)$", re.IGNORECASE)
UNIT_FOLDER = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.\-_]{0,39}$")


class FileUnreadable(ValueError):
    """The whole file cannot be read as a table; it is quarantined as one."""

    def __init__(self, rule: str, message_vi: str, value: str | None = None):
        super().__init__(message_vi)
        self.rule = rule
        self.message_vi = message_vi
        self.value = value


BLOCK = 1 << 22  # bytes read at a time: files are streamed, never held whole
CHUNK_ROWS = 200_000  # rows typed and validated at a time: bounds memory on big files
# A record longer than this (characters) does not parse: it is quarantined, not landed.
# DuckDB's own line limit (max_line_size, 2 MiB) sends longer plain lines here too.
RECORD_CHARS = 1 << 21
# The CSV reader's cell limit: above RECORD_CHARS, so a long cell is a quarantined row,
# not a crash (the module's default, 131072, raises csv.Error mid-file).
csv.field_size_limit(max(csv.field_size_limit(), 1 << 26))


# Bytes in a CSV's records that make it need the careful reader rather than a straight
# landing: quoting, NULs, a cell with blanks around it (the careful reader strips them),
# and (LINE_START) blank or blank-led lines and lines led by an empty cell. Checked with
# `find` and a literal-led regex: one regex alternation over every byte costs ten times
# more. A carriage return outside CRLF, and a ragged row, are caught apart.
NOT_PLAIN_BYTES = (b'"', b"\x00", b", ", b" ,", b"\t", b"\xc2\xa0", b" \n", b" \r")
LINE_START = re.compile(rb"\n[\n\r ,]")
BLANK_CHARS = " \t\u00a0"  # what a cell is stripped of


# A stretch this long without a newline: a long line, which DuckDB's reader rejects
# (above 2 MiB) and, when it cuts a multi-byte character there, fails on; read carefully.
LONG_LINE = 1 << 19


def _plain(data: bytes, start: int = 0) -> bool:
    """No NOT_PLAIN pattern in data[start:] (after the header line), and no line of a
    megabyte or more (every line that long holds a whole LONG_LINE window)."""
    return (
        all(data.find(b, start) < 0 for b in NOT_PLAIN_BYTES)
        and not LINE_START.search(data, max(start - 1, 0))
        and all(
            data.find(b"\n", i, i + LONG_LINE) >= 0
            for i in range(start, len(data) - LONG_LINE + 1, LONG_LINE)
        )
    )


@dataclass
class Scan:
    """What one streaming pass over a file learns."""

    sha256: str
    size: int
    encoding: str | None  # utf-8 | cp1258 | None: binary
    nfc: bool  # UTF-8 text already in NFC (cp1258 is always converted)
    plain: bool  # records free of NOT_PLAIN_BYTES and LINE_START, CR only in CRLF
    first_line: bytes


@dataclass
class SourceFile:
    path: Path
    relative_path: str  # as stored in the warehouse, with forward slashes
    file_date: date | None
    unit_folder: str | None
    _scan_result: Scan | None = field(default=None, repr=False)
    # a small file's bytes, kept from the scan until it is landed (one read per file)
    _held: bytes | None = field(default=None, repr=False)
    _signature: tuple[int, int] | None = field(default=None, repr=False)  # from the listing

    def scan(self, hold: bool = False) -> Scan:
        """One pass: hash, size, encoding, and whether a straight landing can read it.

        With `hold`, a file smaller than one block keeps its bytes for `copy_blocks`.
        """
        if self._scan_result is None:
            with open(self.path, "rb") as stream:
                # a small file is read in one call of its own size, not a BLOCK buffer
                want = min(BLOCK, os.fstat(stream.fileno()).st_size + 1)
                first = stream.read(want)
                if len(first) < want:  # the whole file, the common case: no streaming state
                    self._scan_result = _scan_whole(first)
                    if hold:
                        self._held = first
                else:
                    self._scan_result = _scan_stream(first, iter(lambda: stream.read(BLOCK), b""))
        return self._scan_result

    @property
    def signature(self) -> tuple[int, int]:
        """(size, modification time in ns), without reading the file."""
        if self._signature is None:
            stat = os.stat(self.path)
            self._signature = stat.st_size, stat.st_mtime_ns
        return self._signature

    @property
    def sha256(self) -> str:
        return self.scan().sha256

    @property
    def size(self) -> int:
        return self.scan().size

    @property
    def content(self) -> bytes:
        return self.path.read_bytes()


def _utf8_nfc(data: bytes) -> tuple[bool, bool]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False, False
    return True, text.isascii() or unicodedata.is_normalized("NFC", text)


def _scan_whole(data: bytes) -> Scan:
    binary = b"\x00" in data[:4096]
    utf8, is_nfc = _utf8_nfc(data)
    cut = data.find(b"\n")
    crs = data.count(b"\r")
    return Scan(
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        encoding=None if binary else "utf-8" if utf8 else "cp1258",
        nfc=is_nfc,
        plain=(cut < 0 or _plain(data, cut))
        and not data.endswith(b" ")
        and (not crs or crs == data.count(b"\r\n")),
        first_line=data if cut < 0 else data[:cut],
    )


def _scan_stream(first: bytes, rest: Iterator[bytes]) -> Scan:
    """A file bigger than one block, a block at a time (memory stays flat)."""
    sha, size, crs, crlfs = hashlib.sha256(), 0, 0, 0
    binary = b"\x00" in first[:4096]
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8, is_nfc, tail, last_char = True, True, b"", ""
    cut = first.find(b"\n")
    first_line = first if cut < 0 else first[:cut]
    plain = cut >= 0
    for block in itertools.chain([first], rest):
        sha.update(block)
        window = tail + block
        if plain and not _plain(window, cut if not size else 0):
            plain = False
        size += len(block)
        crs += block.count(b"\r")
        crlfs += window.count(b"\r\n") - tail.count(b"\r\n")
        tail = window[-2:]
        if utf8:
            try:
                text = decoder.decode(block)
            except UnicodeDecodeError:
                utf8 = is_nfc = False
            else:
                if is_nfc and not unicodedata.is_normalized("NFC", last_char + text):
                    is_nfc = False
                last_char = text[-1:] or last_char
    if utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8 = is_nfc = False
    plain = plain and crs == crlfs and not tail.endswith(b" ")
    encoding = None if binary else "utf-8" if utf8 else "cp1258"
    return Scan(sha.hexdigest(), size, encoding, is_nfc and utf8, plain, first_line)


@dataclass(frozen=True)
class CopyPlan:
    """A CSV that DuckDB's reader can land as it is: its columns, in file order."""

    columns: tuple[str, ...]


def copy_plan(file: SourceFile, columns: dict[str, str], required: set[str]) -> CopyPlan | None:
    """How to land `file` straight, or None when it needs the careful reader.

    Straight means: a UTF-8 CSV whose records need no quoting, stripping or odd-line
    handling, with every header a known column (once) and the required ones present.
    A row with too many or too few cells is found by the reader, which then hands the
    file to the careful reader.
    """
    if file.path.suffix.lower() != ".csv":
        return None
    scan = file.scan(hold=True)
    names = None
    if scan.encoding == "utf-8" and scan.plain:
        names = _header_names(scan.first_line, tuple(columns.items()))
    if names is None or not required <= set(names):
        file._held = None
        return None
    return CopyPlan(names)


@functools.lru_cache(maxsize=64)
def _header_names(first_line: bytes, columns: tuple) -> tuple[str, ...] | None:
    """A plain header's canonical names, or None if a cell is unknown or repeated.

    Cached: a source's thousands of files mostly share a handful of header lines.
    """
    try:
        header = first_line.rstrip(b"\r").decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    wanted = {header_key(h): name for h, name in columns}
    names = tuple(wanted.get(header_key(cell)) for cell in header.split(","))
    return None if None in names or len(set(names)) != len(names) else names


def copy_blocks(file: SourceFile, plan: CopyPlan, prefix: bytes) -> Iterator[bytes]:
    """The file's records as NFC CSV lines, each led by `prefix`, header dropped."""
    recode = not file.scan().nfc
    held, file._held = file._held, None
    with io.BytesIO(held) if held is not None else open(file.path, "rb") as stream:
        stream.readline()
        rest = b""
        while True:
            block = stream.read(BLOCK)
            data = rest + block
            if not block:
                if not data:
                    return
                data += b"\n"
                cut = len(data)
            else:
                cut = data.rfind(b"\n") + 1
                if not cut:
                    rest = data
                    continue
            data, rest = data[:cut], data[cut:]
            if recode:
                data = nfc(data.decode("utf-8")).encode("utf-8")
            if b"\r" in data:
                data = data.replace(b"\r\n", b"\n")
            yield prefix + data[:-1].replace(b"\n", b"\n" + prefix) + b"\n"
            if not block:
                return


@dataclass
class ParsedTable:
    """The text cells of a file in canonical column order, with spreadsheet row numbers.

    Cells stay plain lists until a batch of files is typed at once: building a data
    frame per file costs more than reading a small file.
    """

    names: list[str]  # canonical column names, in the order of each record
    records: list[list[str]]
    numbers: list[int]  # the spreadsheet row of each record (header = 1)
    encoding: str
    bad_rows: list[tuple[int, str]]  # (row_number, raw line) rows that did not parse
    meta: dict = field(default_factory=dict)  # per-file columns: file_path, file_date, ...

    def __len__(self) -> int:
        return len(self.records)

    @property
    def frame(self) -> pd.DataFrame:
        return frame_of([self])


def frame_of(tables: list[ParsedTable]) -> pd.DataFrame:
    """One frame of text cells for many read files, with their per-file columns."""
    names = tables[0].names
    frame = (
        pd.DataFrame([r for t in tables for r in t.records], columns=names, dtype=object)
        if any(t.records for t in tables)
        else pd.DataFrame(columns=names, dtype=object)
    )
    frame["row_number"] = [n for t in tables for n in t.numbers]
    for key in tables[0].meta:
        frame[key] = [v for t in tables for v in [t.meta[key]] * len(t.records)]
    return frame


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def header_key(text: str) -> str:
    """Headers match whatever their case, spacing or Unicode normal form."""
    return " ".join(nfc(text).replace("\ufeff", "").casefold().split())


class Listed(NamedTuple):
    """A file a layout found, before anything is read: what a night needs to tell the
    unchanged files (most of a history) from the new ones without building a SourceFile,
    a Path and a stat call of its own for each (10 s a night at 320,000 files)."""

    location: str  # the file's path as the folder scan gave it
    relative_path: str  # as stored in the warehouse, with forward slashes
    file_date: date | None
    unit_folder: str | None
    signature: tuple[int, int]  # (size, modification time in ns)

    def source_file(self) -> SourceFile:
        return SourceFile(Path(self.location), self.relative_path, self.file_date,
                          self.unit_folder, _signature=self.signature)  # fmt: skip


def _listed(entry: os.DirEntry, relative: str, unit_folder: str | None) -> Listed | None:
    match = FILE_NAME.match(entry.name)
    if not match:
        return None
    stat = entry.stat(follow_symlinks=False)
    return Listed(entry.path, relative, _parse_iso_date(match.group(1)), unit_folder,
                  (stat.st_size, stat.st_mtime_ns))  # fmt: skip


def discover_unit_files(root: Path) -> list[Listed]:
    """Files laid out as <root>/<unit_code>/<YYYY-MM-DD>.csv|xlsx, in a stable order.

    Only direct children of the source folder are read, and only folders whose
    names look like unit codes: nothing outside the source folder is ever touched.
    """
    found = []
    if not root.is_dir():
        raise FileNotFoundError(f"source folder not found: {root}")
    for unit_dir in _entries(root, dirs=True):
        if not UNIT_FOLDER.match(unit_dir.name):
            continue
        unit = unit_dir.name
        for file in _entries(Path(unit_dir.path), dirs=False):
            listed = _listed(file, f"{unit}/{file.name}", unit)
            if listed:
                found.append(listed)
    return found


def _entries(folder: Path, *, dirs: bool) -> list[os.DirEntry]:
    """A folder's sub-folders or files by name; symbolic links are never followed."""
    with os.scandir(folder) as scan:
        chosen = [
            e for e in scan
            if (e.is_dir(follow_symlinks=False) if dirs else e.is_file(follow_symlinks=False))
        ]  # fmt: skip
    return sorted(chosen, key=lambda e: e.name)


def discover_dated_files(root: Path) -> list[Listed]:
    """Files laid out as <root>/<YYYY-MM-DD>.csv|xlsx (one stream, no unit folders)."""
    if not root.is_dir():
        raise FileNotFoundError(f"source folder not found: {root}")
    found = []
    for file in _entries(root, dirs=False):
        listed = _listed(file, file.name, None)
        if listed:
            found.append(listed)
    return found


def tag(table: ParsedTable, file: SourceFile) -> ParsedTable:
    """Mark each read row with the file it came from."""
    table.meta.update(
        file_path=file.relative_path,
        file_date=pd.Timestamp(file.file_date) if file.file_date else pd.NaT,
        unit_folder=file.unit_folder,
    )
    return table


class FileLayout:
    """How one kind of file source is found and read: its headers and folder layout."""

    def __init__(self, columns: dict[str, str], required: set[str], layout):
        self.columns, self.required, self.layout = columns, required, layout

    def listing(self, root: Path) -> list[Listed]:
        """Every file the layout finds, not yet read (the loader's way)."""
        return self.layout(root)

    def discover(self, root: Path) -> list[SourceFile]:
        return [listed.source_file() for listed in self.layout(root)]

    def read_chunks(self, file: SourceFile) -> Iterator[ParsedTable]:
        """The file's rows a bounded chunk at a time (the loader's way: memory stays flat)."""
        for table in read_table_chunks(file, self.columns, self.required):
            yield tag(table, file)

    def copy_plan(self, file: SourceFile) -> CopyPlan | None:
        return copy_plan(file, self.columns, self.required)

    def read(self, file: SourceFile) -> ParsedTable:
        """The text cells of one whole file, tagged with where they came from."""
        return tag(read_table(file, self.columns, self.required), file)

    def typed_base(self, text: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The batch's text, stripped, and a typed frame holding where each row came from."""
        text = stripped(text, self.columns.values())
        typed = pd.DataFrame(
            {
                "file_path": text["file_path"],
                "file_date": pd.to_datetime(text["file_date"]),
                "row_number": text["row_number"].astype("int64"),
                "unit_folder": text["unit_folder"],
            },
            index=text.index,
        )
        return text, typed


def parse_dates(text: pd.Series) -> pd.Series:
    """dd/mm/yyyy (a time part, if any, is dropped) -> dates as midnight timestamps."""
    return parse_datetimes(text).dt.normalize()


@functools.lru_cache(maxsize=8192)  # a folder scan meets each day's name once per unit
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
    """A whole file's text cells (small files; big ones go through `read_table_chunks`)."""
    chunks = list(read_table_chunks(file, columns, required, chunk_rows=None))
    return ParsedTable(
        names=chunks[0].names,
        records=[r for c in chunks for r in c.records],
        numbers=[n for c in chunks for n in c.numbers],
        encoding=chunks[0].encoding,
        bad_rows=[bad for c in chunks for bad in c.bad_rows],
    )


def read_table_chunks(
    file: SourceFile,
    columns: dict[str, str],
    required: set[str],
    chunk_rows: int | None = CHUNK_ROWS,
) -> Iterator[ParsedTable]:
    """A CSV or XLSX file's text cells keyed by canonical column names, chunk by chunk.

    `columns` maps each contract header to its canonical name; extra headers are ignored.
    Raises FileUnreadable before the first chunk when the file cannot be a table.
    """
    if file.path.suffix.lower() == ".xlsx":
        rows, encoding = iter(_xlsx_rows(file.content)), "xlsx"
    else:
        rows, encoding = _csv_rows(file)
    header = next(rows, None)
    if not header or not any(cell.strip() for cell in header):
        raise FileUnreadable("file_empty", "Tệp rỗng, không có dòng tiêu đề.")

    wanted = {header_key(h): name for h, name in columns.items()}
    positions: dict[str, int] = {}
    for i, cell in enumerate(header):
        name = wanted.get(header_key(cell))
        if name and name not in positions:
            positions[name] = i
    missing = [h for h, name in columns.items() if name in required and name not in positions]
    if missing:
        raise FileUnreadable(
            "missing_columns",
            "Tệp thiếu cột bắt buộc: " + ", ".join(missing) + ".",
            value="|".join(nfc(c) for c in header).replace("\x00", "\ufffd"),
        )

    width = len(header)
    names = list(columns.values())
    # a missing optional column reads the empty cell appended at position `width`
    pick = operator.itemgetter(*(positions.get(name, width) for name in names))
    records, numbers, bad_rows = [], [], []
    row_number = 1
    for row in rows:
        row_number += 1  # records, as a spreadsheet numbers them (header = 1)
        joined = "".join(row)
        # ragged, a NUL (no warehouse text holds it) or too long: the row does not parse
        if len(row) != width or "\x00" in joined or len(joined) > RECORD_CHARS:
            if joined.strip():
                bad_rows.append((row_number, ",".join(row).replace("\x00", "\ufffd")))
            continue
        if not joined.strip():
            continue  # blank lines are not records
        row.append("")
        records.append([cell.strip(BLANK_CHARS) for cell in pick(row)])
        numbers.append(row_number)
        if chunk_rows and len(records) >= chunk_rows:
            yield ParsedTable(names, records, numbers, encoding, bad_rows)
            records, numbers, bad_rows = [], [], []
    yield ParsedTable(names, records, numbers, encoding, bad_rows)


def _csv_rows(file: SourceFile) -> tuple[Iterator[list[str]], str]:
    encoding = file.scan().encoding
    if encoding is None:
        raise FileUnreadable("file_not_text", "Tệp không phải văn bản CSV (có ký tự nhị phân).")
    with open(file.path, "rb") as probe:
        bom = probe.read(3) == b"\xef\xbb\xbf"
    if (bom and encoding != "utf-8") or (encoding == "cp1258" and not _cp1258(file.path)):
        # a BOM before bytes that are not UTF-8, or bytes Windows-1258 does not map
        raise FileUnreadable(
            "file_encoding", "Không đọc được bảng mã của tệp (không phải UTF-8 hay Windows-1258)."
        )
    label = "utf-8-sig" if bom else encoding
    lines = _Lines(_nfc_lines(file.path, label))
    return _records(csv.reader(lines), lines), label


def _cp1258(path: Path) -> bool:
    """Every byte maps to a Windows-1258 character (a single-byte code: block by block)."""
    with open(path, "rb") as stream:
        try:
            for block in iter(lambda: stream.read(BLOCK), b""):
                block.decode("cp1258")
        except UnicodeDecodeError:
            return False
    return True


class _Lines:
    """Lines for the CSV reader: it remembers the lines of the record being read and takes
    lines back to be read again."""

    def __init__(self, lines: Iterator[str]):
        self._lines, self._back, self.taken = lines, [], []

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = self._back.pop() if self._back else next(self._lines)
        self.taken.append(line)
        return line

    def give_back(self, lines: list[str]) -> None:
        self._back.extend(reversed(lines))


def _records(reader, lines: _Lines) -> Iterator[list[str]]:
    """The reader's records; one it cannot split (a cell beyond its limit) is a bad row.

    A cell opening with a stray quote (a clerk's typo: `"Nguyễn`) makes the reader run on
    to the next quote, lines or the whole file later. A record that spans lines and is
    not one well-formed record of the header's width (its quotes closing right before a
    comma or the line's end) is such a run-on: its first line is the bad row and the lines
    after it are read again, so the rows a typo would swallow still load. A real
    multi-line cell is well formed and stays whole.
    """
    width = None
    while True:
        lines.taken = []
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            row = [f"<{exc}>"]  # one cell: ragged, so quarantined as row_unparseable
        if width is None:
            width = len(row)  # the header
        elif len(lines.taken) > 1 and not _one_record(lines.taken, width):
            lines.give_back(lines.taken[1:])
            row = [lines.taken[0].rstrip("\r\n")]
        yield row


def _one_record(lines: list[str], width: int) -> bool:
    """The lines are one strictly quoted record of `width` cells."""
    try:
        records = list(csv.reader(lines, strict=True))
    except csv.Error:
        return False
    return len(records) == 1 and len(records[0]) == width


def _nfc_lines(path: Path, encoding: str) -> Iterator[str]:
    """Lines of a text file in NFC, normalised a block of whole lines at a time."""
    with open(path, encoding=encoding, newline="") as stream:
        while True:
            lines = stream.readlines(BLOCK)
            if not lines:
                return
            block = "".join(lines)
            if not unicodedata.is_normalized("NFC", block):
                lines = unicodedata.normalize("NFC", block).splitlines(keepends=True)
            yield from lines


# calamine lays a sheet out as a dense grid from its first to its last cell: one cell at
# XFD1048576 in a 5 KB workbook asks for 500 GB and aborts the process (no exception)
XLSX_CELLS = 20_000_000  # rows × columns of the grid: about 1 GB laid out
XLSX_XML_BYTES = 1 << 30  # a worksheet's XML once unzipped; more is a zip bomb
CELL_REF = re.compile(rb'<(?:\w+:)?c\b[^>]*?\sr="([A-Z]{1,3})([0-9]{1,7})"')
CELL_TAG = re.compile(rb"<(?:\w+:)?c[\s/>]")


def _xlsx_size_check(content: bytes) -> None:
    """Refuse a workbook whose sheets would not fit in memory, before calamine sees it:
    every worksheet's XML is streamed once for its cell references."""
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(content)) as book:
            for info in book.infolist():
                if info.filename.startswith("xl/worksheets/") and info.filename.endswith(".xml"):
                    _sheet_size_check(book, info)
    except FileUnreadable:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError):
        return  # not a readable zip: calamine says it is corrupt


def _sheet_size_check(book, info) -> None:
    rows, columns, tags, unpacked = [], [], 0, 0
    with book.open(info) as xml:
        tail = b""
        for block in iter(lambda: xml.read(BLOCK), b""):
            unpacked += len(block)
            if unpacked > XLSX_XML_BYTES:
                raise FileUnreadable(
                    "file_too_large",
                    f"Bảng tính quá lớn khi giải nén (trên {XLSX_XML_BYTES >> 20} MB).",
                    value=info.filename,
                )
            text, tail = tail + block, block[-64:]  # a tag cut by the block edge is seen twice
            tags += len(CELL_TAG.findall(block))
            for letters, number in CELL_REF.findall(text):
                rows.append(int(number))
                columns.append(_column_number(letters))
            if rows:  # keep the extremes only
                rows[:], columns[:] = [min(rows), max(rows)], [min(columns), max(columns)]
    grid = (rows[1] - rows[0] + 1) * (columns[1] - columns[0] + 1) if rows else 0
    if max(grid, tags) > XLSX_CELLS:
        span = f"{rows[1] - rows[0] + 1} dòng × {columns[1] - columns[0] + 1} cột" if rows else ""
        raise FileUnreadable(
            "file_too_large",
            f"Bảng tính quá lớn: {span or f'{tags} ô'} (tối đa {XLSX_CELLS:,} ô).",
            value=f"{info.filename}: {span or tags}",
        )


def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + letter - 64
    return number


def _xlsx_rows(content: bytes) -> list[list[str]]:
    from python_calamine import CalamineWorkbook

    _xlsx_size_check(content)
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


def stripped(text: pd.DataFrame, columns) -> pd.DataFrame:
    """The batch with surrounding spaces removed from the contract's columns."""
    text = text.copy()
    for col in columns:
        text[col] = text[col].str.strip()
    return text


# The shape the warehouse's strptime accepts (flows.refine): ASCII digits, ASCII blanks
# around and between date and time, seconds below 60. Python's strptime alone would also
# take other digits and blanks ('٢', NBSP) and roll second 60 over to the next minute.
DATETIME_TEXT = r"\s*\d{1,2}/\d{1,2}/\d{4}(?:\s+\d{1,2}:\d{1,2}(?::[0-5]?\d)?)?\s*"


def parse_datetimes(text: pd.Series) -> pd.Series:
    """dd/mm/yyyy[ HH:MM[:SS]] -> timestamps; anything else (or impossible) -> NaT."""
    result = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    shaped = text.str.fullmatch(DATETIME_TEXT, flags=re.ASCII).fillna(False).astype(bool)
    text = text.where(shaped, "").str.strip(" \t\n\r\x0b\x0c")
    for fmt in DATE_FORMATS:
        todo = result.isna() & (text != "")
        if not todo.any():
            break
        result[todo] = pd.to_datetime(text[todo], format=fmt, errors="coerce")
    low, high = YEARS
    return result.where((result.dt.year >= low) & (result.dt.year <= high))


def parse_integers(text: pd.Series) -> pd.Series:
    """Whole numbers that fit the raw layer's integer columns; '2.0' or 'abc' -> NA."""
    cleaned = text.where(text.str.fullmatch(r"[+-]?\d{1,9}"), None)
    return pd.to_numeric(cleaned, errors="coerce").astype("Int64")


def parse_amounts(text: pd.Series) -> pd.Series:
    """VND amounts: plain digits or with '.' thousands separators ('50.000'); a sign is
    read so that a negative fee is reported as such, not as unreadable."""
    grouped = text.str.fullmatch(r"-?\d{1,3}(\.\d{3}){1,4}")
    plain = text.str.fullmatch(r"-?\d{1,15}")
    cleaned = text.where(grouped | plain, None).str.replace(".", "", regex=False)
    return pd.to_numeric(cleaned, errors="coerce").astype("Int64")
