"""Hostile and broken dossier files, loaded for real on DuckDB and PostgreSQL (issue 8).

Every scenario loads a folder of files through `load.load_file_source` and checks what
lands: every good row is loaded, the bad part is quarantined with its rule and, where it
has one, its row and column; each file's rows read = loaded + quarantined; nothing
outside the source folder is read; a rerun changes nothing (`_load` checks the last three
for every scenario).
"""

from __future__ import annotations

import csv
import io
import os
import random
import sys
import tracemalloc
import unicodedata
import zipfile
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest

from flows import load
from flows.settings import Source
from flows.sources import common, dossier_files
from flows.sources.common import SourceFile
from flows.warehouse import Warehouse

HEADER = list(dossier_files.COLUMNS)
BASE = {
    "Mã hồ sơ": "H31.13.11629-250402-{n:04d}",
    "Mã đơn vị": "11629",
    "Mã TTHC": "1.001193",
    "Kênh nộp": "1",
    "Ngày tiếp nhận": "02/04/2025 08:00",
    "Ngày hẹn trả": "04/04/2025",
    "Ngày kết thúc xử lý": "",
    "Ngày trả kết quả": "",
    "Trạng thái": "2",
    "Số lần bổ sung": "0",
    "Lệ phí": "0",
    "Thanh toán trực tuyến": "0",
    "Số hóa": "1",
    "Kết quả điện tử": "0",
    "Tái sử dụng": "0",
    "Ngày xin lỗi": "",
    "Họ tên người nộp": "Nguyễn Thị Hoà",
    "Số giấy tờ": "031190001234",
    "Ngày cập nhật": "02/04/2025 08:00:05",
}
NAME, ID, PROCEDURE, RECEIVED = "Họ tên người nộp", "Số giấy tờ", "Mã TTHC", "Ngày tiếp nhận"


def code(n: int) -> str:
    return BASE["Mã hồ sơ"].format(n=n)


def row(n: int, **changes: str) -> list[str]:
    """Dossier n's cells in contract order; `changes` by header, spaces as underscores."""
    cells = {**BASE, "Mã hồ sơ": code(n)}
    for key, value in changes.items():
        header = key.replace("_", " ")
        assert header in cells, header
        cells[header] = value
    return list(cells.values())


def cells(n: int, changes: dict[str, str]) -> list[str]:
    return [changes.get(h, code(n) if h == "Mã hồ sơ" else v) for h, v in BASE.items()]


def csv_bytes(rows, header=HEADER, quoting=csv.QUOTE_MINIMAL) -> bytes:
    out = io.StringIO()
    csv.writer(out, quoting=quoting, lineterminator="\n").writerows([header, *rows])
    return out.getvalue().encode("utf-8")


def xlsx_bytes(rows, header=HEADER) -> bytes:
    """A real workbook; every cell a string, including ones that look like formulas."""
    book = openpyxl.Workbook()
    sheet = book.active
    for r, values in enumerate([header, *rows], start=1):
        for c, value in enumerate(values, start=1):
            cell = sheet.cell(row=r, column=c)
            cell.value = value
            cell.data_type = "s"  # text, as a desk's export writes it, never a formula
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def write(root: Path, files: dict[str, bytes]) -> None:
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def rows_of(warehouse: Warehouse, sql: str) -> list[dict]:
    frame = warehouse.query_df(sql)
    return [
        {k: (None if v is None or v != v else v) for k, v in r.items()}
        for r in frame.astype(object).to_dict("records")
    ]


def snapshot(warehouse: Warehouse) -> dict:
    out = {}
    for table in ("dossier_log", "quarantine", "row_flags", "loaded_files"):
        frame = warehouse.query_df(f"select * from raw.{table}")
        out[table] = sorted(map(str, frame.astype(str).values.tolist()))
    return out


def check_accounting(warehouse: Warehouse, result) -> None:
    """Per file: rows read = loaded + quarantined, each count what the tables hold; a file
    quarantined whole has read nothing."""
    files = rows_of(
        warehouse,
        "select file_path, rows_read, rows_loaded, rows_quarantined from raw.loaded_files",
    )
    loaded = {
        r["file_path"]: int(r["n"])
        for r in rows_of(
            warehouse, "select file_path, count(*) as n from raw.dossier_log group by file_path"
        )
    }
    quarantined = {
        r["file_path"]: int(r["n"])
        for r in rows_of(
            warehouse,
            "select file_path, count(distinct row_number) as n from raw.quarantine "
            "where row_number is not null group by file_path",
        )
    }
    whole = {
        r["file_path"]
        for r in rows_of(warehouse, "select file_path from raw.quarantine where row_number is null")
    }
    assert set(loaded) | set(quarantined) | whole <= {f["file_path"] for f in files}
    for f in files:
        path = f["file_path"]
        assert f["rows_read"] == f["rows_loaded"] + f["rows_quarantined"], f
        assert f["rows_loaded"] == loaded.get(path, 0), f
        assert f["rows_quarantined"] == quarantined.get(path, 0), f
        if path in whole:
            assert (f["rows_read"], path in loaded, path in quarantined) == (0, False, False), f
    assert result.rows_read == sum(f["rows_read"] for f in files)
    assert result.rows_loaded == sum(f["rows_loaded"] for f in files)
    assert result.rows_quarantined == sum(f["rows_quarantined"] for f in files)
    assert result.files_quarantined == len(whole)


def _load(url: str, root: Path) -> tuple[Warehouse, object]:
    """Load the folder, check the accounting, load it again: the rerun changes nothing."""
    warehouse = Warehouse.from_url(url)
    warehouse.prepare()
    source = Source(name="xa", kind="dossier_files", path=root)
    result = load.load_file_source(warehouse, source, "run-1")
    check_accounting(warehouse, result)
    before = snapshot(warehouse)
    again = load.load_file_source(warehouse, source, "run-2")
    assert (again.files_loaded, again.files_quarantined, again.rows_read) == (0, 0, 0)
    assert again.files_unchanged == again.files_seen == result.files_seen
    assert snapshot(warehouse) == before
    return warehouse, result


def loaded_codes(warehouse: Warehouse) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in rows_of(
        warehouse, "select file_path, dossier_code from raw.dossier_log order by 1, row_number"
    ):
        out.setdefault(r["file_path"], []).append(r["dossier_code"])
    return out


def quarantine(warehouse: Warehouse) -> list[dict]:
    return rows_of(
        warehouse,
        "select file_path, row_number, column_name, value, rule, message_vi from raw.quarantine "
        "order by file_path, row_number",
    )


def is_plain(path: Path) -> bool:
    """Whether the straight landing (DuckDB's reader, not the careful one) takes the file."""
    file = SourceFile(path, path.name, None, path.parent.name)
    return dossier_files.FORMAT.copy_plan(file) is not None


# -- truncated files


def test_truncated_csv_keeps_every_whole_row_and_quarantines_the_cut_one(warehouse_url, tmp_path):
    root = tmp_path / "xa"
    plain = csv_bytes([row(1), row(2), row(3), row(4)])
    cut_plain = plain[: plain.rindex(b"02/04/2025 08:00,") + 5]  # inside row 5's received date
    quoted = csv_bytes(
        [row(1), row(2), row(3), row(4, **{NAME: 'Lê, Văn "Tư"'})], quoting=csv.QUOTE_ALL
    )
    cut_quoted = quoted[: quoted.index("Lê, V".encode()) + len("Lê, V".encode())]
    header = csv_bytes([])
    write(
        root,
        {
            "11629/2025-04-02.csv": cut_plain,  # no newline at the end, last line incomplete
            "11629/2025-04-03.csv": cut_quoted,  # cut inside a quoted field
            "11629/2025-04-04.csv": b"",  # cut to nothing
            "11629/2025-04-05.csv": header[: header.index("Kênh".encode())],  # inside the header
            "11629/2025-04-06.csv": header,  # only the header: read, nothing to load
        },
    )
    assert is_plain(root / "11629/2025-04-02.csv")  # the straight landing is tried first
    warehouse, result = _load(warehouse_url, root)

    codes = [code(1), code(2), code(3)]
    assert loaded_codes(warehouse) == {"11629/2025-04-02.csv": codes, "11629/2025-04-03.csv": codes}
    last_plain = cut_plain.decode().splitlines()[-1]
    last_quoted = next(csv.reader([cut_quoted.decode().splitlines()[-1]]))
    assert len(last_quoted) == HEADER.index(NAME) + 1  # the cut cell is the row's last
    keys = ("file_path", "row_number", "value", "rule")
    found = [{k: r[k] for k in keys} for r in quarantine(warehouse)]
    assert found == [
        {"file_path": "11629/2025-04-02.csv", "row_number": 5, "value": last_plain,
         "rule": "row_unparseable"},
        {"file_path": "11629/2025-04-03.csv", "row_number": 5, "value": ",".join(last_quoted),
         "rule": "row_unparseable"},
        {"file_path": "11629/2025-04-04.csv", "row_number": None, "value": None,
         "rule": "file_empty"},
        {"file_path": "11629/2025-04-05.csv", "row_number": None,
         "value": "Mã hồ sơ|Mã đơn vị|Mã TTHC|", "rule": "missing_columns"},
    ]  # fmt: skip
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (8, 6, 2)
    assert result.files_quarantined == 2


def test_corrupt_xlsx_is_quarantined_whole_and_the_rest_loads(warehouse_url, tmp_path):
    root = tmp_path / "xa"
    good = xlsx_bytes([row(1), row(2), row(3)])
    not_a_workbook = io.BytesIO()
    with zipfile.ZipFile(not_a_workbook, "w") as archive:
        archive.writestr("readme.txt", "not a workbook")
    write(
        root,
        {
            "11629/2025-04-02.xlsx": good,
            "11629/2025-04-03.xlsx": random.Random(3).randbytes(5000),  # random bytes
            "11629/2025-04-04.xlsx": good[: len(good) // 2],  # truncated real workbook
            "11629/2025-04-05.xlsx": good[:-30],  # only its zip directory cut
            "11629/2025-04-06.xlsx": not_a_workbook.getvalue(),  # a zip, not a workbook
            "11629/2025-04-07.xlsx": csv_bytes([row(9)]),  # a CSV named .xlsx
            "11629/2025-04-08.csv": csv_bytes([row(4)]),
        },
    )
    warehouse, result = _load(warehouse_url, root)
    assert loaded_codes(warehouse) == {
        "11629/2025-04-02.xlsx": [code(1), code(2), code(3)],
        "11629/2025-04-08.csv": [code(4)],
    }
    corrupt = [f"11629/2025-04-0{d}.xlsx" for d in range(3, 8)]
    assert [(q["file_path"], q["row_number"], q["rule"]) for q in quarantine(warehouse)] == [
        (path, None, "file_corrupt") for path in corrupt
    ]
    assert all("Excel" in q["message_vi"] for q in quarantine(warehouse))
    assert result.files_quarantined == 5


def test_an_xlsx_that_would_not_fit_in_memory_is_refused_not_fatal(
    warehouse_url, tmp_path, monkeypatch
):
    """One cell at XFD1048576 makes calamine lay out 17 billion cells: it aborted the whole
    process, killing the night. A sheet whose XML unzips past the limit is a zip bomb."""
    root = tmp_path / "xa"
    far = openpyxl.load_workbook(io.BytesIO(xlsx_bytes([row(5)])))
    far.active.cell(row=1_048_576, column=16_384, value="x")
    far_bytes = io.BytesIO()
    far.save(far_bytes)
    monkeypatch.setattr(common, "XLSX_XML_BYTES", 1 << 20)  # a bomb of a test's size
    bomb = xlsx_bytes([row(6, **{NAME: "A" * 2000}) for _ in range(600)])  # 1.2 MB of XML
    assert len(bomb) < 100_000
    write(root, {
        "11629/2025-04-02.xlsx": xlsx_bytes([row(1), row(2)]),
        "11629/2025-04-03.xlsx": far_bytes.getvalue(),
        "11629/2025-04-04.xlsx": bomb,
    })  # fmt: skip
    warehouse, result = _load(warehouse_url, root)
    assert loaded_codes(warehouse) == {"11629/2025-04-02.xlsx": [code(1), code(2)]}
    refused = quarantine(warehouse)
    assert [(q["file_path"], q["row_number"], q["rule"]) for q in refused] == [
        ("11629/2025-04-03.xlsx", None, "file_too_large"),
        ("11629/2025-04-04.xlsx", None, "file_too_large"),
    ]
    assert "1048576 dòng × 16384 cột" in refused[0]["message_vi"]
    assert "giải nén" in refused[1]["message_vi"]
    assert result.files_quarantined == 2


# -- a 10 MB cell


def test_a_ten_megabyte_cell_never_crashes_and_its_stored_value_is_cut(warehouse_url, tmp_path):
    root = tmp_path / "xa"
    huge = "x" * 10_000_000
    long_name = "ệ" * 1_000_000  # 3 MB of UTF-8: longer than DuckDB's default line limit
    plain_rows = [row(1), row(2, **{NAME: huge}), row(3)]
    quoted_rows = [row(4), row(5, **{RECEIVED: huge}), row(6)]
    write(
        root,
        {
            "11629/2025-04-02.csv": csv_bytes(plain_rows),
            "11629/2025-04-03.csv": csv_bytes(quoted_rows, quoting=csv.QUOTE_ALL),
            "11629/2025-04-04.csv": csv_bytes([row(7, **{NAME: long_name}), row(8)]),
            "11629/2025-04-05.csv": csv_bytes([row(9, **{NAME: long_name})], quoting=csv.QUOTE_ALL),
        },
    )
    # no quote, yet a line that long is read carefully (DuckDB's reader rejects lines over
    # 2 MiB and fails when it cuts a multi-byte character there)
    assert not is_plain(root / "11629/2025-04-02.csv")
    assert not is_plain(root / "11629/2025-04-04.csv")
    tracemalloc.start()
    try:
        warehouse, result = _load(warehouse_url, root)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # measured 159 MB (the 10 MB line is held a few times over while it is read, once)
    assert peak < 200 << 20, f"Python peak {peak >> 20} MB for 26 MB of files"

    assert loaded_codes(warehouse) == {
        "11629/2025-04-02.csv": [code(1), code(3)],
        "11629/2025-04-03.csv": [code(4), code(6)],
        "11629/2025-04-04.csv": [code(7), code(8)],
        "11629/2025-04-05.csv": [code(9)],
    }
    found = quarantine(warehouse)
    assert [(q["file_path"], q["row_number"], q["rule"]) for q in found] == [
        ("11629/2025-04-02.csv", 3, "row_unparseable"),
        ("11629/2025-04-03.csv", 3, "row_unparseable"),
    ]
    # the value stored is the row as written, cut to 500 characters
    assert found[0]["value"] == ",".join(plain_rows[1])[:500]
    assert found[1]["value"] == ",".join(quoted_rows[1])[:500]
    assert "dài" in found[0]["message_vi"]
    names = rows_of(
        warehouse,
        "select dossier_code, applicant_name from raw.dossier_log "
        f"where dossier_code in ('{code(7)}', '{code(9)}') order by 1",
    )
    assert [r["applicant_name"] == long_name for r in names] == [True, True]
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (9, 7, 2)


def test_a_stray_quote_does_not_swallow_the_rows_after_it(warehouse_url, tmp_path):
    root = tmp_path / "xa"
    lines = csv_bytes([row(n) for n in range(1, 10)]).decode().splitlines(keepends=True)
    lines[3] = lines[3].replace("Nguyễn", '"Nguyễn')  # row 4, dossier 3: a clerk's typo
    lines[6] = lines[6].replace("Nguyễn", '"Nguyễn')  # row 7 too: the run-on reaches row 4's
    lines[9] = lines[9].replace("Nguyễn", '"Nguyễn')  # the last row: runs on to the end
    write(root, {"11629/2025-04-02.csv": "".join(lines).encode()})
    warehouse, result = _load(warehouse_url, root)
    assert [(q["row_number"], q["rule"]) for q in quarantine(warehouse)] == [
        (4, "row_unparseable"), (7, "row_unparseable"), (10, "row_unparseable")
    ]  # fmt: skip
    assert loaded_codes(warehouse)["11629/2025-04-02.csv"] == [code(n) for n in (1, 2, 4, 5, 7, 8)]
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (9, 6, 3)
    (value,) = {q["value"] for q in quarantine(warehouse) if q["row_number"] == 4}
    assert value == lines[3].rstrip("\n")  # the line as written, for the clerk to fix


# -- binary garbage, NUL bytes, mixed encodings


def test_binary_garbage_named_csv_is_quarantined_whole(warehouse_url, tmp_path):
    root = tmp_path / "xa"
    rng = random.Random(5)
    utf8 = csv_bytes([row(1)])
    mixed = utf8.replace(b"M", b"\xef\xbb\xbfM", 1) + (
        ",".join(row(2, **{NAME: "Nguyễn Văn Hùng"})).encode("cp1258", errors="replace") + b"\n"
    )  # a UTF-8 file with a BOM, and a row appended by Windows-1258 software
    write(
        root,
        {
            "11629/2025-04-02.csv": utf8,
            "11629/2025-04-03.csv": rng.randbytes(20_000),  # NULs among the first bytes
            "11629/2025-04-04.csv": bytes(rng.randrange(1, 256) for _ in range(20_000)),  # none
            "11629/2025-04-05.csv": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + rng.randbytes(500),
            "11629/2025-04-06.csv": mixed,
        },
    )
    warehouse, result = _load(warehouse_url, root)
    assert loaded_codes(warehouse) == {"11629/2025-04-02.csv": [code(1)]}
    assert [(q["file_path"], q["row_number"], q["rule"]) for q in quarantine(warehouse)] == [
        ("11629/2025-04-03.csv", None, "file_not_text"),
        ("11629/2025-04-04.csv", None, "file_encoding"),
        ("11629/2025-04-05.csv", None, "file_not_text"),
        ("11629/2025-04-06.csv", None, "file_encoding"),
    ]
    assert result.files_quarantined == 4


def test_a_nul_byte_quarantines_only_its_row(warehouse_url, tmp_path):
    """A NUL past the first 4 KB (so the file reads as text) cannot be stored by
    PostgreSQL: its row is quarantined, the value shown with U+FFFD, the rest loads. A
    file whose tail was zero-filled (a crash while writing) keeps its written rows."""
    root = tmp_path / "xa"
    rows = [row(n) for n in range(1, 41)]
    rows[34] = row(35, **{NAME: "Trần\x00Bình"})
    padded = csv_bytes([row(n) for n in range(41, 81)]) + b"\x00" * 5000
    write(root, {"11629/2025-04-02.csv": csv_bytes(rows), "11629/2025-04-03.csv": padded})
    assert csv_bytes(rows).index(b"\x00") > 4096
    warehouse, result = _load(warehouse_url, root)
    codes = loaded_codes(warehouse)
    assert codes["11629/2025-04-02.csv"] == [code(n) for n in range(1, 41) if n != 35]
    assert codes["11629/2025-04-03.csv"] == [code(n) for n in range(41, 81)]
    found = quarantine(warehouse)
    assert [(q["file_path"], q["row_number"], q["rule"]) for q in found] == [
        ("11629/2025-04-02.csv", 36, "row_unparseable"),
        ("11629/2025-04-03.csv", 42, "row_unparseable"),
    ]
    assert found[0]["value"] == ",".join(rows[34]).replace("\x00", "\ufffd")
    assert found[1]["value"] == "\ufffd" * 500
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (81, 79, 2)


# -- headers


def test_extra_columns_are_ignored(warehouse_url, tmp_path):
    root = tmp_path / "xa"
    at = HEADER.index(PROCEDURE)
    header = ["STT", *HEADER[:at], "Ghi chú", *HEADER[at:], "Ghi chú", ""]
    rows = [["1", *r[:at], "gọi lại sau", *r[at:], "x", "y"] for r in (row(1), row(2))]
    write(
        root,
        {
            "11629/2025-04-02.csv": csv_bytes(rows, header=header),
            "11629/2025-04-03.xlsx": xlsx_bytes(rows, header=header),
        },
    )
    warehouse, _ = _load(warehouse_url, root)
    landed = rows_of(
        warehouse,
        "select file_path, row_number, dossier_code, unit_code, procedure_code, received_at, "
        "applicant_name, updated_at from raw.dossier_log order by 1, 2",
    )
    expected = {
        "dossier_code": code(1), "unit_code": "11629", "procedure_code": "1.001193",
        "received_at": datetime(2025, 4, 2, 8, 0), "applicant_name": "Nguyễn Thị Hoà",
        "updated_at": datetime(2025, 4, 2, 8, 0, 5),
    }  # fmt: skip
    assert len(landed) == 4
    for r in landed:
        want = {**expected, "dossier_code": code(r["row_number"] - 1)}
        assert {k: r[k] for k in want} == want
    assert quarantine(warehouse) == []


def test_missing_required_columns_quarantine_the_file_naming_them(warehouse_url, tmp_path):
    root = tmp_path / "xa"
    dropped = ["Kênh nộp", "Trạng thái"]
    header = [h for h in HEADER if h not in dropped]
    rows = [[v for h, v in zip(HEADER, row(1), strict=True) if h not in dropped]]
    write(
        root,
        {
            "11629/2025-04-02.csv": csv_bytes(rows, header=header),
            "11629/2025-04-03.xlsx": xlsx_bytes(rows, header=header),
            "11629/2025-04-04.csv": csv_bytes([row(2)]),
            # an optional column missing is no problem
            "11629/2025-04-05.csv": csv_bytes([row(3)[:-1]], header=HEADER[:-1]),
        },
    )
    warehouse, _ = _load(warehouse_url, root)
    assert loaded_codes(warehouse) == {
        "11629/2025-04-04.csv": [code(2)],
        "11629/2025-04-05.csv": [code(3)],
    }
    found = quarantine(warehouse)
    assert [(q["file_path"], q["row_number"], q["rule"]) for q in found] == [
        ("11629/2025-04-02.csv", None, "missing_columns"),
        ("11629/2025-04-03.xlsx", None, "missing_columns"),
    ]
    for q in found:
        assert q["message_vi"] == "Tệp thiếu cột bắt buộc: Kênh nộp, Trạng thái."
        assert q["value"] == "|".join(header)


def test_duplicated_columns_take_the_first_and_headers_match_loosely(warehouse_url, tmp_path):
    root = tmp_path / "xa"
    loose = [unicodedata.normalize("NFD", f"  {h.upper()} ") for h in HEADER]
    header = [*loose, "Ngày tiếp nhận", "mã hồ sơ", "Ghi chú", "Ghi chú"]
    rows = [[*row(1), "01/01/2020 08:00", "KHAC-1", "a", "b"]]
    write(
        root,
        {
            "11629/2025-04-02.csv": csv_bytes(rows, header=header),
            "11629/2025-04-03.xlsx": xlsx_bytes(rows, header=header),
        },
    )
    warehouse, _ = _load(warehouse_url, root)
    landed = rows_of(warehouse, "select dossier_code, received_at from raw.dossier_log")
    assert landed == [{"dossier_code": code(1), "received_at": datetime(2025, 4, 2, 8, 0)}] * 2


# -- implausible dates


def test_dates_in_the_future_are_flagged_and_before_1990_quarantined(warehouse_url, tmp_path):
    root = tmp_path / "xa"
    received = [
        "02/04/2030 08:00",  # 2: years after the file's day: loaded, flagged
        "03/04/2025 00:00",  # 3: the day after the file's day: loaded, flagged
        "02/04/2025 23:59:59",  # 4: the file's day: loaded
        "01/01/1990 00:00",  # 5: the first plausible instant: loaded
        "31/12/1989 23:59:59",  # 6: before 1990: quarantined
        "15/06/1975",  # 7: quarantined
        "31/12/2099 23:59",  # 8: the last year a date may name: loaded, flagged
        "01/01/2100 00:00",  # 9: no real date: quarantined
        "01/01/1899",  # 10: no real date: quarantined
    ]
    rows = [row(n, **{RECEIVED: r, "Ngày_hẹn_trả": ""}) for n, r in enumerate(received, 1)]
    write(root, {"11629/2025-04-02.csv": csv_bytes(rows)})
    warehouse, result = _load(warehouse_url, root)
    assert loaded_codes(warehouse)["11629/2025-04-02.csv"] == [code(n) for n in (1, 2, 3, 4, 7)]
    found = [
        (q["row_number"], q["column_name"], q["value"], q["rule"]) for q in quarantine(warehouse)
    ]
    assert found == [
        (6, RECEIVED, "31/12/1989 23:59:59", "received_at_implausible"),
        (7, RECEIVED, "15/06/1975", "received_at_implausible"),
        (9, RECEIVED, "01/01/2100 00:00", "received_at_invalid"),
        (10, RECEIVED, "01/01/1899", "received_at_invalid"),
    ]
    flags = rows_of(warehouse, "select row_number, rule from raw.row_flags order by 1")
    assert flags == [
        {"row_number": 2, "rule": "received_after_file_date"},
        {"row_number": 3, "rule": "received_after_file_date"},
        {"row_number": 8, "rule": "received_after_file_date"},
    ]
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (9, 5, 4)


# -- paths outside the source folder

_watched: list[str] = []  # real paths no load may open or list
_touched: list[str] = []


def _audit(event: str, args: tuple) -> None:
    if not _watched or event not in ("open", "os.scandir", "os.listdir", "os.open"):
        return
    target = args[0] if args else None
    if target is None or isinstance(target, int):
        return
    real = os.path.realpath(os.fsdecode(target))
    if any(real == w or real.startswith(w + os.sep) for w in _watched):
        _touched.append(real)
        raise PermissionError(f"the loader opened {real}, outside the source folder")


_hooked: list[bool] = []


def test_nothing_outside_the_source_folder_is_read(warehouse_url, tmp_path):
    root, outside = tmp_path / "xa", tmp_path / "outside"
    write(
        outside,
        {
            "secret.csv": csv_bytes([row(90)]),
            "11630/2025-04-02.csv": csv_bytes([row(91)]),
            "etc/2025-04-02.csv": csv_bytes([row(92)]),
        },
    )
    write(
        root,
        {
            "11629/2025-04-02.csv": csv_bytes([row(1)]),
            "..\\..\\etc/2025-04-02.csv": csv_bytes([row(93)]),  # a folder named ..\..\etc
            ".hidden/2025-04-02.csv": csv_bytes([row(94)]),
            "11629/archive/2025-04-01.csv": csv_bytes([row(95)]),  # not a direct child
        },
    )
    (root / "11630").symlink_to(outside / "11630", target_is_directory=True)
    (root / "11631").symlink_to(outside / "etc", target_is_directory=True)
    (root / "11629" / "2025-04-03.csv").symlink_to(outside / "secret.csv")
    (root / "11629" / "2025-04-04.csv").symlink_to("/dev/zero")  # endless if ever read
    (root / "11629" / "2025-04-05.csv").symlink_to("../../outside/secret.csv")
    never = [outside, root / "..\\..\\etc", root / ".hidden", root / "11629" / "archive"]
    if not _hooked:
        sys.addaudithook(_audit)
        _hooked.append(True)
    _watched[:] = [os.path.realpath(p) for p in never] + ["/dev/zero"]
    _touched.clear()
    try:
        warehouse, result = _load(warehouse_url, root)
    finally:
        _watched.clear()
    assert _touched == []
    assert loaded_codes(warehouse) == {"11629/2025-04-02.csv": [code(1)]}
    files = rows_of(warehouse, "select file_path from raw.loaded_files")
    assert files == [{"file_path": "11629/2025-04-02.csv"}]
    assert result.files_seen == 1


def test_the_audit_hook_sees_a_read_outside(tmp_path):
    """The guard above can fail: reading a watched file through a symlink is caught."""
    outside = tmp_path / "outside"
    write(outside, {"secret.csv": b"x"})
    (tmp_path / "link.csv").symlink_to(outside / "secret.csv")
    if not _hooked:
        sys.addaudithook(_audit)
        _hooked.append(True)
    _watched[:] = [os.path.realpath(outside)]
    _touched.clear()
    try:
        with pytest.raises(PermissionError):
            (tmp_path / "link.csv").read_bytes()
    finally:
        _watched.clear()
    secret = os.path.realpath(outside / "secret.csv")
    assert _touched == [secret]


# -- values that look like SQL or spreadsheet formulas

SQL_LIKE = [
    "'); drop table marts.dim_unit; --",
    '"; drop table raw.loaded_files; --',
    "Robert'); DELETE FROM raw.dossier_log WHERE ('1'='1",
    "C:\\new\\table\\",
    "\\N",
    "\\.",
    "\\\\.",
    "NULL",
    "$$; select 1; $$",
    "%s %(x)s {0} ?",
    "x\n\\.\ny",  # `\.` alone on a line inside a quoted cell: COPY's old end-of-data mark
]
FORMULAS = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "@SUM(1)", "-2+3", "=1+1"]


def _needs_quoting(value: str) -> bool:
    return any(c in value for c in ',"\n')


def _text_rows(values: list[str]) -> list[list[str]]:
    """Each value in every text column of its own row (the dossier code too)."""
    return [
        cells(n, {"Mã hồ sơ": v, NAME: v, ID: v, PROCEDURE: v})
        for n, v in enumerate(values, start=1)
    ]


def _text_values(warehouse: Warehouse) -> dict[str, set[tuple]]:
    out: dict[str, set[tuple]] = {}
    for r in rows_of(
        warehouse,
        "select file_path, dossier_code, applicant_name, applicant_id, procedure_code "
        "from raw.dossier_log",
    ):
        path = r.pop("file_path")
        out.setdefault(path, set()).add(tuple(r.values()))
    return out


def test_values_that_look_like_sql_are_stored_verbatim_and_harmless(warehouse_url, tmp_path):
    root = tmp_path / "xa"
    plain_values = [v for v in SQL_LIKE if not _needs_quoting(v)]
    quoted = csv_bytes(
        [*_text_rows(SQL_LIKE), cells(50, {RECEIVED: SQL_LIKE[0]})], quoting=csv.QUOTE_ALL
    )
    write(
        root,
        {
            "11629/2025-04-02.csv": quoted + b"\\.\n" + csv_bytes([row(51)])[len(csv_bytes([])) :],
            "11629/2025-04-03.csv": csv_bytes(_text_rows(plain_values)),
            "11629/2025-04-04.xlsx": xlsx_bytes(_text_rows(SQL_LIKE)),
        },
    )
    assert is_plain(root / "11629/2025-04-03.csv")
    warehouse = Warehouse.from_url(warehouse_url)
    warehouse.prepare()
    with warehouse.transaction() as conn:
        conn.execute("create table marts.dim_unit (unit_code varchar)")
        conn.execute("insert into marts.dim_unit values ('11629')")
    warehouse, result = _load(warehouse_url, root)

    values = _text_values(warehouse)
    assert values["11629/2025-04-02.csv"] == {(v, v, v, v) for v in SQL_LIKE} | {
        (code(51), BASE[NAME], BASE[ID], BASE[PROCEDURE])
    }
    assert values["11629/2025-04-03.csv"] == {(v, v, v, v) for v in plain_values}
    assert values["11629/2025-04-04.xlsx"] == {(v, v, v, v) for v in SQL_LIKE}
    keys = ("row_number", "column_name", "value", "rule")
    found = [tuple(q[k] for k in keys) for q in quarantine(warehouse)]
    assert found == [
        (len(SQL_LIKE) + 2, RECEIVED, SQL_LIKE[0], "received_at_invalid"),
        (len(SQL_LIKE) + 3, None, "\\.", "row_unparseable"),  # a line holding only `\.`
    ]
    # harmless: the tables are all there, with their rows
    assert rows_of(warehouse, "select unit_code from marts.dim_unit") == [{"unit_code": "11629"}]
    assert len(rows_of(warehouse, "select file_path from raw.loaded_files")) == 3
    assert result.rows_loaded == 2 * len(SQL_LIKE) + 1 + len(plain_values)


def test_formula_looking_cells_are_stored_verbatim_as_text(warehouse_url, tmp_path):
    """cchc writes no spreadsheet or CSV for people (the report is HTML): what matters is
    that such cells land exactly as written, as text, never evaluated or altered."""
    root = tmp_path / "xa"
    plain_values = [v for v in FORMULAS if not _needs_quoting(v)]
    odd = [cells(60, {"Lệ phí": "-2+3"}), cells(61, {RECEIVED: FORMULAS[0]})]
    write(
        root,
        {
            "11629/2025-04-02.csv": csv_bytes([*_text_rows(FORMULAS), *odd]),
            "11629/2025-04-03.csv": csv_bytes(_text_rows(plain_values)),
            "11629/2025-04-04.xlsx": xlsx_bytes([*_text_rows(FORMULAS), *odd]),
        },
    )
    assert is_plain(root / "11629/2025-04-03.csv")
    warehouse, _ = _load(warehouse_url, root)
    values = _text_values(warehouse)
    for path in ("11629/2025-04-02.csv", "11629/2025-04-04.xlsx"):
        assert values[path] == {(v, v, v, v) for v in FORMULAS} | {
            (code(60), BASE[NAME], BASE[ID], BASE[PROCEDURE])
        }
    assert values["11629/2025-04-03.csv"] == {(v, v, v, v) for v in plain_values}
    fee = rows_of(
        warehouse,
        "select file_path, value, rule from raw.row_flags where rule = 'fee_vnd_unreadable' "
        "order by 1",
    )
    assert [(f["value"], f["rule"]) for f in fee] == [("-2+3", "fee_vnd_unreadable")] * 2
    found = [(q["file_path"], q["value"], q["rule"]) for q in quarantine(warehouse)]
    assert found == [
        ("11629/2025-04-02.csv", FORMULAS[0], "received_at_invalid"),
        ("11629/2025-04-04.xlsx", FORMULAS[0], "received_at_invalid"),
    ]
