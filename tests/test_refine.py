"""Set-based typing and validation agree with pandas and with GX's own engine.

The loader types and validates landed text in SQL (flows.refine); the API path types
in pandas and validates with GX. On the same tricky cells both must keep the same
values and find the same (row, rule) pairs, on both warehouses, whether a file goes
straight into COPY or through the careful reader.
"""

from __future__ import annotations

import csv
import io

import pandas as pd
import pytest

from flows import load, validate
from flows.settings import Source
from flows.sources import dossier_files
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
# One cell changed per row: each a reading the two engines could disagree on.
TRICKY = [
    {},
    {"Ngày tiếp nhận": "2/4/2025 8:05"},
    {"Ngày tiếp nhận": "29/02/2024 23:59:59", "Ngày hẹn trả": "01/03/2024"},
    {"Ngày tiếp nhận": "29/02/2023"},
    {"Ngày tiếp nhận": "02/04/2025 24:00"},
    {"Ngày tiếp nhận": "13/13/2025"},
    {"Ngày tiếp nhận": "2025-04-02"},
    {"Ngày tiếp nhận": "02/04/1500"},
    {"Ngày hẹn trả": "01/04/2025"},
    {"Ngày hẹn trả": "31/04/2025"},
    {"Ngày kết thúc xử lý": "  03/04/2025 10:00  "},
    {"Kênh nộp": "+2"},
    {"Kênh nộp": "1.0"},
    {"Trạng thái": "11"},
    {"Trạng thái": ""},
    {"Số lần bổ sung": "-1"},
    {"Số lần bổ sung": "12345678901"},
    {"Lệ phí": "50.000"},
    {"Lệ phí": "1.000.000"},
    {"Lệ phí": "5.00"},
    {"Lệ phí": "50,000"},
    {"Thanh toán trực tuyến": "3"},
    {"Số hóa": "x"},
    {"Mã hồ sơ": ""},
    {"Mã hồ sơ": "HS 12"},
    {"Mã đơn vị": ""},
    {"Mã đơn vị": "99999"},
    {"Mã TTHC": "1.00119"},
    {"Họ tên người nộp": 'Trần Văn "Tư", con'},
]
ROWS = [
    [v.format(n=n) if k == "Mã hồ sơ" else v for k, v in {**BASE, **change}.items()]
    for n, change in enumerate(TRICKY, start=1)
]
VALUE_COLUMNS = [c for c in dossier_files.COLUMNS.values()]


def _write(path, rows, quoting):
    path.parent.mkdir(parents=True, exist_ok=True)
    out = io.StringIO()
    csv.writer(out, quoting=quoting, lineterminator="\n").writerows([HEADER, *rows])
    path.write_text(out.getvalue(), encoding="utf-8")


def _expected(file: SourceFile) -> tuple[pd.DataFrame, set]:
    """The pandas typing and GX's findings for the same file (the API path's engines)."""
    text = dossier_files.FORMAT.read(file).frame
    text["load_id"] = "x"
    typed = dossier_files.to_typed(text)
    found = validate.findings(typed, dossier_files.SUITE)
    rows = typed.row_number
    pairs = {(int(rows[f.row_index]), f.rule, f.value or None) for f in found.itertuples()}
    critical = {int(rows[f.row_index]) for f in found.itertuples() if f.severity == "critical"}
    kept = typed[~typed.row_number.isin(critical)]
    return kept.set_index("row_number")[VALUE_COLUMNS].sort_index(), pairs


@pytest.mark.parametrize("quoting", [csv.QUOTE_MINIMAL, csv.QUOTE_ALL], ids=["plain", "quoted"])
def test_warehouse_types_and_finds_what_pandas_and_gx_do(warehouse_url, tmp_path, quoting):
    rows = ROWS if quoting == csv.QUOTE_ALL else [r for r in ROWS if not _needs_care(r)]
    path = tmp_path / "xa" / "11629" / "2025-04-02.csv"
    _write(path, rows, quoting)
    file = SourceFile(path, "11629/2025-04-02.csv", None, "11629")
    plan = dossier_files.FORMAT.copy_plan(file)
    assert (plan is not None) == (quoting == csv.QUOTE_MINIMAL)  # both paths are exercised
    expected_rows, expected_findings = _expected(file)

    warehouse = Warehouse.from_url(warehouse_url)
    warehouse.prepare()
    source = Source(name="xa", kind="dossier_files", path=tmp_path / "xa")
    result = load.load_file_source(warehouse, source, "run-1")

    landed = warehouse.query_df(
        f"select row_number, {', '.join(VALUE_COLUMNS)} from raw.dossier_log order by row_number"
    ).set_index("row_number")
    for column in VALUE_COLUMNS:
        got = [None if pd.isna(v) else v for v in landed[column]]
        want = [None if pd.isna(v) else v for v in expected_rows[column]]
        if column.endswith("_at"):
            got = [None if v is None else pd.Timestamp(v) for v in got]
        assert got == want, column
    issues = warehouse.query_df(
        "select row_number, rule, value from raw.quarantine union all "
        "select row_number, rule, value from raw.row_flags"
    )
    found = {(int(r.row_number), r.rule, r.value) for r in issues.itertuples()}
    critical_rows = {r for r, rule, _ in expected_findings if rule in _critical_rules()}
    # a quarantined row is not also flagged: warnings are kept for loaded rows only
    expected = {
        f for f in expected_findings if f[0] not in critical_rows or f[1] in _critical_rules()
    }
    assert found == expected
    assert result.rows_read == len(rows)
    assert result.rows_loaded == len(landed) == len(rows) - len(critical_rows)


def _needs_care(row: list[str]) -> bool:
    """Cells a plain CSV cannot carry (quotes, commas, blanks to strip); a line led by an
    empty cell is read carefully too."""
    return row[0] == "" or any("," in c or '"' in c or c != c.strip() for c in row)


def _critical_rules() -> set[str]:
    return {
        r.rule
        for r in load.refine.rules("dossier_files", dossier_files)
        if r.severity == "critical"
    }


def test_a_plain_looking_file_with_ragged_rows_is_read_carefully(warehouse_url, tmp_path):
    """Commas add up overall, but one row has one too many and another one too few:
    COPY refuses the file, the group is redone by the careful reader, nothing is lost."""
    rows = [list(r) for r in ROWS[:4]]
    rows[1] = rows[1] + ["extra"]
    rows[2] = rows[2][:-1]
    path = tmp_path / "xa" / "11629" / "2025-04-02.csv"
    _write(path, rows, csv.QUOTE_MINIMAL)
    file = SourceFile(path, "11629/2025-04-02.csv", None, "11629")
    assert dossier_files.FORMAT.copy_plan(file) is not None

    warehouse = Warehouse.from_url(warehouse_url)
    warehouse.prepare()
    result = load.load_file_source(
        warehouse, Source(name="xa", kind="dossier_files", path=tmp_path / "xa"), "run-1"
    )
    quarantined = warehouse.query_df("select row_number, rule from raw.quarantine order by 1")
    assert quarantined.to_dict("records") == [
        {"row_number": 3, "rule": "row_unparseable"},
        {"row_number": 4, "rule": "row_unparseable"},
        {"row_number": 5, "rule": "received_at_invalid"},  # 29/02/2023
    ]
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (4, 1, 3)
    assert warehouse.query_df("select count(*) as n from raw.dossier_log").n[0] == 1
