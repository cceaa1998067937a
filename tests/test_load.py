"""Loading dossier files into raw, on DuckDB and PostgreSQL: quarantine, idempotence."""

from __future__ import annotations

import os
import shutil

import pytest

from flows import load
from flows.settings import load_sources_file
from flows.warehouse import Warehouse
from tests.conftest import FIXTURES


@pytest.fixture
def bad_rows_source(tmp_path):
    root = tmp_path / "sources"
    shutil.copytree(FIXTURES / "bad_rows", root)
    return load_sources_file(root / "sources.yml")


def _prepared(url: str) -> Warehouse:
    warehouse = Warehouse.from_url(url)
    warehouse.prepare()
    return warehouse


def test_bad_rows_are_quarantined_with_file_row_column_value(warehouse_url, bad_rows_source):
    warehouse = _prepared(warehouse_url)
    result = load.load_dossier_files(warehouse, bad_rows_source.sources[0], "run-1")

    quarantine = warehouse.query_df(
        "select file_path, row_number, record_code, column_name, value, rule "
        "from raw.quarantine order by row_number"
    )
    assert quarantine.to_dict("records") == [
        {
            "file_path": "11629/2025-04-02.csv",
            "row_number": 4,
            "record_code": "H31.13.11629-250402-0003",
            "column_name": "Ngày tiếp nhận",
            "value": "31/02/2025 08:00",
            "rule": "received_at_invalid",
        },
        {
            "file_path": "11629/2025-04-02.csv",
            "row_number": 5,
            "record_code": "H31.13.11629-250402-0004",
            "column_name": "Trạng thái",
            "value": "11",
            "rule": "status_code_domain",
        },
        {
            "file_path": "11629/2025-04-02.csv",
            "row_number": 6,
            "record_code": None,
            "column_name": None,
            "value": quarantine.value[2],
            "rule": "row_unparseable",
        },
    ]
    loaded = warehouse.query_df("select dossier_code, row_number from raw.dossier_log order by 2")
    assert list(loaded.row_number) == [2, 3, 7]  # the good rows of the same file all load
    # A merely suspicious value (unreadable due date) loads and is flagged, not quarantined.
    flags = warehouse.query_df("select row_number, column_name, value, rule from raw.row_flags")
    assert flags.to_dict("records") == [
        {"row_number": 7, "column_name": "Ngày hẹn trả", "value": "xx/04/2025",
         "rule": "due_at_unreadable"}
    ]  # fmt: skip
    files = warehouse.query_df(
        "select rows_read, rows_loaded, rows_quarantined from raw.loaded_files"
    )
    assert files.to_dict("records") == [{"rows_read": 6, "rows_loaded": 3, "rows_quarantined": 3}]
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (6, 3, 3)


def test_reload_of_same_files_changes_nothing(warehouse_url, bad_rows_source):
    warehouse = _prepared(warehouse_url)
    load.load_dossier_files(warehouse, bad_rows_source.sources[0], "run-1")
    before = _snapshot(warehouse)
    again = load.load_dossier_files(warehouse, bad_rows_source.sources[0], "run-2")
    assert (again.files_loaded, again.files_unchanged, again.rows_read) == (0, 1, 0)
    assert _snapshot(warehouse) == before


def test_a_touched_file_with_the_same_bytes_is_not_loaded_again(warehouse_url, bad_rows_source):
    """Size and modification time spare a night from reading its history; a file whose
    time moved (copied back, touched) is hashed, and the same bytes are not loaded."""
    warehouse = _prepared(warehouse_url)
    source = bad_rows_source.sources[0]
    load.load_dossier_files(warehouse, source, "run-1")
    before = _snapshot(warehouse)
    path = source.path / "11629" / "2025-04-02.csv"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    again = load.load_dossier_files(warehouse, source, "run-2")
    assert (again.files_seen, again.files_loaded, again.files_unchanged) == (1, 0, 1)
    assert _snapshot(warehouse) == before


def test_a_fixed_file_replaces_what_it_loaded_before(warehouse_url, bad_rows_source):
    warehouse = _prepared(warehouse_url)
    source = bad_rows_source.sources[0]
    load.load_dossier_files(warehouse, source, "run-1")
    path = source.path / "11629" / "2025-04-02.csv"
    text = path.read_text(encoding="utf-8-sig").replace("31/02/2025 08:00", "02/04/2025 08:00")
    path.write_text(text, encoding="utf-8-sig")

    result = load.load_dossier_files(warehouse, source, "run-2")
    assert (result.rows_loaded, result.rows_quarantined) == (4, 2)
    counts = warehouse.query_df(
        "select (select count(*) from raw.dossier_log) as rows, "
        "(select count(*) from raw.quarantine) as quarantined, "
        "(select count(*) from raw.loaded_files) as files"
    )
    assert counts.to_dict("records") == [{"rows": 4, "quarantined": 2, "files": 1}]


def test_unreadable_file_is_quarantined_whole_and_others_load(warehouse_url, bad_rows_source):
    warehouse = _prepared(warehouse_url)
    source = bad_rows_source.sources[0]
    (source.path / "11629" / "2025-04-03.csv").write_bytes(b"\x00\x01\x02garbage" * 100)
    result = load.load_dossier_files(warehouse, source, "run-1")
    assert result.files_quarantined == 1
    whole = warehouse.query_df(
        "select file_path, rule from raw.quarantine where row_number is null"
    ).to_dict("records")
    assert whole == [{"file_path": "11629/2025-04-03.csv", "rule": "file_not_text"}]
    assert warehouse.query_df("select count(*) as n from raw.dossier_log").n[0] == 3


def _snapshot(warehouse: Warehouse) -> dict:
    out = {}
    for table in ("dossier_log", "quarantine", "row_flags", "loaded_files"):
        frame = warehouse.query_df(f"select * from raw.{table}")
        out[table] = sorted(map(str, frame.astype(str).values.tolist()))
    return out
