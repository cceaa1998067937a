"""Every file source kind lands its exact values in raw, on DuckDB and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import shutil
import unicodedata

import pytest

from flows import load
from flows.settings import load_sources_file
from flows.warehouse import Warehouse
from tests.conftest import FIXTURES


def _source(tmp_path, fixture: str, name: str):
    shutil.copytree(FIXTURES / fixture, tmp_path / fixture)
    sources = load_sources_file(tmp_path / fixture / "sources.yml")
    return next(s for s in sources.sources if s.name == name)


@pytest.fixture
def warehouse(warehouse_url) -> Warehouse:
    wh = Warehouse.from_url(warehouse_url)
    wh.prepare()
    return wh


def _rows(warehouse: Warehouse, sql: str) -> list[dict]:
    frame = warehouse.query_df(sql)
    return [
        {k: (None if v is None or v != v else v) for k, v in r.items()}
        for r in frame.astype(object).to_dict("records")
    ]


def _day(value) -> dt.date | None:
    return None if value is None else value.date() if hasattr(value, "date") else value


def test_xlsx_dossier_export_lands_exact_values(warehouse, tmp_path):
    result = load.load_file_source(warehouse, _source(tmp_path, "xlsx", "xa"), "run-1")
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (3, 3, 0)
    rows = _rows(
        warehouse,
        "select dossier_code, procedure_code, channel, received_at, due_at, returned_at, "
        "status_code, supplement_count, fee_vnd, paid_online, reused, applicant_name, "
        "applicant_id from raw.dossier_log order by row_number",
    )
    first = rows[0]
    assert first["dossier_code"] == "H31.13.11632-250403-0001"
    assert first["procedure_code"] == "1.001190"
    assert first["received_at"] == dt.datetime(2025, 4, 3, 8, 5)
    assert first["returned_at"] == dt.datetime(2025, 4, 8, 9, 0)
    assert (first["status_code"], first["fee_vnd"], first["paid_online"]) == (10, 50000, 1)
    assert first["applicant_name"] == "Đặng Thị Thuỳ Dương"
    assert first["applicant_id"] == "031190007777"
    assert rows[1]["due_at"] == dt.datetime(2025, 4, 3)  # a due date without a time
    assert (rows[1]["supplement_count"], rows[1]["reused"]) == (1, 1)
    # numeric cells typed by a clerk still load as codes and integers
    assert (rows[2]["channel"], rows[2]["applicant_id"]) == (1, "31085000043")
    flags = _rows(warehouse, "select row_number, column_name, value, rule from raw.row_flags")
    assert flags == [
        {"row_number": 4, "column_name": "Ngày hẹn trả", "value": "abc",
         "rule": "due_at_unreadable"}
    ]  # fmt: skip


def test_task_file_loads_and_quarantines_what_cannot_be_a_task(warehouse, tmp_path):
    result = load.load_file_source(warehouse, _source(tmp_path, "tasks_docs", "nhiem_vu"), "r1")
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (4, 2, 2)
    rows = _rows(
        warehouse,
        "select task_id, summary, assigned_by, department_code, assigned_on, deadline_on, "
        "completed_on, updated_at from raw.task_log order by row_number",
    )
    assert [r["task_id"] for r in rows] == ["NV-2025-0001", "NV-2025-0002"]
    assert rows[0]["summary"] == "Báo cáo kết quả rà soát, cập nhật hồ sơ địa chính quý II"
    assert rows[0]["assigned_by"] == "UBND huyện An Lão"
    assert _day(rows[0]["deadline_on"]) == dt.date(2025, 6, 30)
    assert rows[0]["completed_on"] is None
    assert _day(rows[1]["completed_on"]) == dt.date(2025, 5, 14)
    assert rows[1]["updated_at"] == dt.datetime(2025, 5, 10, 16, 5)
    quarantine = _rows(
        warehouse, "select row_number, column_name, value, rule from raw.quarantine order by 1"
    )
    assert quarantine == [
        {"row_number": 4, "column_name": "Hạn hoàn thành", "value": "31/02/2025",
         "rule": "deadline_on_invalid"},
        {"row_number": 5, "column_name": "Mã nhiệm vụ", "value": None,
         "rule": "task_id_missing"},
    ]  # fmt: skip


def test_document_files_load_per_unit_folder(warehouse, tmp_path):
    source = _source(tmp_path, "tasks_docs", "van_ban_di")
    result = load.load_file_source(warehouse, source, "r1")
    assert (result.files_seen, result.rows_read, result.rows_loaded) == (2, 5, 4)
    rows = _rows(
        warehouse,
        "select unit_code, document_number, issued_on, digitally_signed from raw.document_log "
        "order by unit_code, document_number",
    )
    assert [(r["unit_code"], r["document_number"], r["digitally_signed"]) for r in rows] == [
        ("11632", "45/UBND-VP", 1),
        ("313-TNMT", "125/TNMT-ĐĐ", 1),
        ("313-TNMT", "126/QĐ-TNMT", 0),
        ("313-TNMT", "127/TNMT-MT", 1),
    ]
    assert _day(rows[0]["issued_on"]) == dt.date(2025, 5, 12)
    quarantine = _rows(warehouse, "select file_path, row_number, value, rule from raw.quarantine")
    assert quarantine == [
        {"file_path": "11632/2025-05-12.csv", "row_number": 3, "value": "xx/05/2025",
         "rule": "issued_on_invalid"}
    ]  # fmt: skip
    again = load.load_file_source(warehouse, source, "r2")
    assert (again.files_unchanged, again.rows_read) == (2, 0)


def test_windows_1258_and_nfd_files_land_as_nfc(warehouse, tmp_path):
    result = load.load_file_source(warehouse, _source(tmp_path, "encodings", "xa"), "run-1")
    assert (result.rows_read, result.rows_loaded) == (2, 2)
    rows = _rows(
        warehouse,
        "select unit_code, procedure_code, fee_vnd, status_code, received_at, applicant_name "
        "from raw.dossier_log order by unit_code",
    )
    assert rows == [
        {"unit_code": "11641", "procedure_code": "1.001193", "fee_vnd": 8000, "status_code": 10,
         "received_at": dt.datetime(2025, 4, 10, 8, 20), "applicant_name": "Vũ Thị Ngọc Ánh"},
        {"unit_code": "11644", "procedure_code": "2.000815", "fee_vnd": 1500000, "status_code": 5,
         "received_at": dt.datetime(2025, 4, 10, 14, 2, 11),
         "applicant_name": "Trương Quốc Hưng"},
    ]  # fmt: skip
    for row in rows:  # stored composed (NFC), whatever the file used
        assert unicodedata.is_normalized("NFC", row["applicant_name"])
    encodings = _rows(warehouse, "select file_path, encoding from raw.loaded_files order by 1")
    assert [e["encoding"] for e in encodings] == ["cp1258", "utf-8"]
