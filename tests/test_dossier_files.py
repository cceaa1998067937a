"""Parsing of dossier log files (CONTRACTS §1a): headers, encodings, values kept exact."""

from __future__ import annotations

import unicodedata
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from flows.sources import dossier_files
from flows.sources.common import FileUnreadable, SourceFile

HEADER = list(dossier_files.COLUMNS)
ROW = [
    "H31.13.11629-250402-0001", "11629", "1.001190", "2", "02/04/2025 08:15:00",
    "04/04/2025", "03/04/2025 10:00", "", "9", "0", "50.000", "1", "1", "1", "0", "",
    "Nguyễn Thị Hường", "031085001234", "03/04/2025 10:00:00",
]  # fmt: skip


def _file(tmp_path: Path, text: str, encoding: str = "utf-8-sig") -> SourceFile:
    path = tmp_path / "11629" / "2025-04-02.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return SourceFile(path, "11629/2025-04-02.csv", date(2025, 4, 2), "11629")


def _csv(header: list[str], *rows: list[str]) -> str:
    return "\r\n".join(",".join(r) for r in [header, *rows]) + "\r\n"


def test_values_land_exactly_with_codes_kept_as_text(tmp_path):
    typed, table = dossier_files.parse(_file(tmp_path, _csv(HEADER, ROW)))
    row = typed.iloc[0]
    assert table.encoding == "utf-8-sig"
    assert row.procedure_code == "1.001190"  # never the number 1.00119
    assert row.applicant_id == "031085001234"  # leading zero kept
    assert row.fee_vnd == 50000
    assert row.received_at == pd.Timestamp("2025-04-02 08:15:00")
    assert row.due_at == pd.Timestamp("2025-04-04")
    assert row.finished_at == pd.Timestamp("2025-04-03 10:00")
    assert pd.isna(row.returned_at)
    assert row.row_number == 2
    assert row.applicant_name == "Nguyễn Thị Hường"


def test_headers_tolerate_case_spacing_and_nfd(tmp_path):
    header = [unicodedata.normalize("NFD", h.upper()).replace(" ", "  ") for h in HEADER]
    row = [unicodedata.normalize("NFD", v) for v in ROW]
    typed, _ = dossier_files.parse(_file(tmp_path, _csv(header, row), encoding="utf-8"))
    assert typed.iloc[0].applicant_name == "Nguyễn Thị Hường"
    assert unicodedata.is_normalized("NFC", typed.iloc[0].applicant_name)


def _cp1258_form(text: str) -> str:
    """Windows-1258 has letters like ê and ơ but writes tones as combining marks."""
    out = []
    for char in unicodedata.normalize("NFC", text):
        try:
            out.append(char.encode("cp1258") and char)
            continue
        except UnicodeEncodeError:
            base, *marks = unicodedata.normalize("NFD", char)
        for i, mark in enumerate(marks):
            composed = unicodedata.normalize("NFC", base + mark)
            try:
                composed.encode("cp1258")
            except UnicodeEncodeError:
                continue
            base, marks = composed, marks[:i] + marks[i + 1 :]
            break
        out.append(base + "".join(marks))
    return "".join(out)


def test_windows_1258_is_detected(tmp_path):
    text = _cp1258_form(_csv(HEADER, ROW))
    typed, table = dossier_files.parse(_file(tmp_path, text, encoding="cp1258"))
    assert table.encoding == "cp1258"
    assert typed.iloc[0].applicant_name == "Nguyễn Thị Hường"


def test_row_with_wrong_field_count_is_set_aside_and_the_rest_parses(tmp_path):
    typed, table = dossier_files.parse(_file(tmp_path, _csv(HEADER, ROW, ROW[:5], ROW)))
    assert list(typed.row_number) == [2, 4]
    assert [n for n, _ in table.bad_rows] == [3]


def test_missing_required_column_makes_the_file_unreadable(tmp_path):
    header = [h for h in HEADER if h != "Ngày tiếp nhận"]
    row = [v for h, v in zip(HEADER, ROW, strict=True) if h != "Ngày tiếp nhận"]
    with pytest.raises(FileUnreadable) as caught:
        dossier_files.parse(_file(tmp_path, _csv(header, row)))
    assert caught.value.rule == "missing_columns"
    assert "Ngày tiếp nhận" in caught.value.message_vi


def test_binary_garbage_is_unreadable(tmp_path):
    path = tmp_path / "11629" / "2025-04-02.csv"
    path.parent.mkdir(parents=True)
    path.write_bytes(bytes(range(256)) * 4)
    file = SourceFile(path, "11629/2025-04-02.csv", date(2025, 4, 2), "11629")
    with pytest.raises(FileUnreadable):
        dossier_files.parse(file)


def test_discovery_reads_only_unit_folders_and_dated_files(tmp_path):
    for rel in [
        "11629/2025-04-02.csv",
        "11629/notes.txt",
        "313/2025-04-03.xlsx",
        ".hidden/2025-04-02.csv",
    ]:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    found = [f.relative_path for f in dossier_files.discover(tmp_path)]
    assert found == ["11629/2025-04-02.csv", "313/2025-04-03.xlsx"]
