"""The department dossier API (CONTRACTS §1b) against a real loopback server with faults,
loaded into real DuckDB and real PostgreSQL: every change once, none lost, none twice."""

from __future__ import annotations

import unicodedata
from datetime import date, datetime, timedelta

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from flows.settings import LOCAL_TZ, Source
from flows.simulate_api import (
    API_TIME,
    ApiServer,
    FaultPlan,
    department_records,
    nfd,
    serve_api_command,
)
from flows.sources import dossier_api
from flows.sources.dossier_api import (
    BEGINNING,
    ApiAuthError,
    ApiConfigError,
    ApiUnavailable,
    DossierApiClient,
    RetryPolicy,
    fetch_changes,
    load_dossier_api,
)
from flows.warehouse import Warehouse

TOKEN = "test-token-3f9a-department"
TOKEN_ENV = "CCHC_TEST_TNMT_TOKEN"
# Small waits so that a run through dozens of faults takes well under a second of sleeping.
FAST = RetryPolicy(
    attempts=6,
    backoff_seconds=0.01,
    backoff_max_seconds=0.04,
    retry_after_max_seconds=0.02,
    timeout_seconds=0.25,
)


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return department_records(seed=2025, per_department=30)  # 120 dossiers


@pytest.fixture
def token(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return TOKEN


def _source(server: ApiServer) -> Source:
    return Source(name="phong_ban", kind="dossier_api", url=server.url, token_env=TOKEN_ENV)


def _prepared(url: str) -> Warehouse:
    warehouse = Warehouse.from_url(url)
    warehouse.prepare()
    return warehouse


def _loaded_keys(warehouse: Warehouse) -> list[tuple[str, datetime]]:
    frame = warehouse.query_df("select dossier_code, updated_at from raw.dossier_log")
    return [
        (code, _naive(at)) for code, at in zip(frame.dossier_code, frame.updated_at, strict=True)
    ]


def _naive(value) -> datetime:
    return value.to_pydatetime() if hasattr(value, "to_pydatetime") else value


def _server_keys(server: ApiServer) -> set[tuple[str, datetime]]:
    return {(code, datetime.strptime(at, API_TIME)) for code, at in server.versions()}


def _watermark(warehouse: Warehouse) -> datetime | None:
    return dossier_api.read_watermark(warehouse, "phong_ban")


def test_a_third_of_requests_failing_still_fetches_every_record_once(warehouse_url, records, token):
    faults = FaultPlan(
        rate_429=0.12, rate_500=0.08, rate_503=0.06, rate_slow=0.07, rate_drop=0.1,
        slow_seconds=0.5, max_streak=3, seed=11,
        # every kind at least once, whatever the draws
        script=("429", "ok", "500", "ok", "slow", "ok", "drop", "ok", "503"),
    )  # fmt: skip
    warehouse = _prepared(warehouse_url)
    with ApiServer(records, TOKEN, faults) as server:
        result = load_dossier_api(warehouse, _source(server), "run-1", policy=FAST, page_size=10)

        outcomes = server.requests
        total = sum(outcomes.values())
        assert total - outcomes["ok"] >= total / 3
        assert all(outcomes[kind] > 0 for kind in ("429", "500", "503", "slow", "drop"))
        loaded = _loaded_keys(warehouse)
        assert len(loaded) == len(set(loaded)) == len(records)
        assert set(loaded) == _server_keys(server)
        assert result.rows_loaded == len(records)
        assert _watermark(warehouse) == server.latest_change()


def test_pages_shifting_mid_run_lose_nothing(warehouse_url, records, token):
    """Records change while the client pages: some already fetched, some not yet reached."""
    first_page, unread = [r["MaHoSo"] for r in records[:3]], [r["MaHoSo"] for r in records[60:63]]

    def shift(server: ApiServer, request: int) -> None:
        if request == 3:  # two pages read: move three of them, and three not yet read
            server.touch(first_page + unread, TrangThaiHoSo=10)
        if request == 6:
            server.touch(first_page[:1], NgayTra="20250701090000", TrangThaiHoSo=10)

    warehouse = _prepared(warehouse_url)
    with ApiServer(records, TOKEN, on_request=shift) as server:
        load_dossier_api(warehouse, _source(server), "run-1", policy=FAST, page_size=20)
        loaded = set(_loaded_keys(warehouse))
        assert {code for code, _ in loaded} == {r["MaHoSo"] for r in records}
        server.on_request = None
        load_dossier_api(warehouse, _source(server), "run-2", policy=FAST, page_size=20)

        loaded = _loaded_keys(warehouse)
        assert len(loaded) == len(set(loaded))
        # Every dossier's current version is there; the extra rows are earlier versions.
        assert _server_keys(server) <= set(loaded)
        originals = {(r["MaHoSo"], datetime.strptime(r["NgayCapNhat"], API_TIME)) for r in records}
        assert set(loaded) - _server_keys(server) <= originals


def test_second_run_fetches_only_what_changed(warehouse_url, records, token):
    # The last second holds a good record and a broken one (status 11): re-read by every
    # later run, loaded once and quarantined once.
    last_good = dict(records[-1], MaHoSo="H31.13.NV-250630-0098", NgayCapNhat="20250630170500")
    broken = dict(last_good, MaHoSo="H31.13.NV-250630-0099", TrangThaiHoSo=11)
    warehouse = _prepared(warehouse_url)
    with ApiServer([*records, last_good, broken], TOKEN) as server:
        first = load_dossier_api(warehouse, _source(server), "run-1", policy=FAST, page_size=50)
        assert (first.rows_loaded, first.rows_quarantined) == (len(records) + 1, 1)
        watermark = _watermark(warehouse)
        assert watermark == datetime(2025, 6, 30, 17, 5, 0)
        before = len(server.request_log)

        second = load_dossier_api(warehouse, _source(server), "run-2", policy=FAST, page_size=50)
        asked = [entry.updated_since for entry in server.request_log[before:]]
        assert asked and all(since >= (watermark - timedelta(seconds=1)).strftime(API_TIME)
                             for since in asked)  # fmt: skip
        assert (second.rows_read, second.rows_loaded, second.rows_quarantined) == (0, 0, 0)
        assert second.files_unchanged == 1
        counts = warehouse.query_df(
            "select (select count(*) from raw.dossier_log) as rows, "
            "(select count(*) from raw.quarantine) as quarantined, "
            "(select count(*) from raw.loaded_files) as batches"
        )
        assert counts.to_dict("records") == [
            {"rows": len(records) + 1, "quarantined": 1, "batches": 1}
        ]

        # Three change within the watermark's own second (after run 1 read it), two later.
        codes = [r["MaHoSo"] for r in records[10:15]]
        touched = server.touch(codes[:3], watermark, SoLanBoSung=1)
        touched += server.touch(codes[3:], watermark + timedelta(hours=2), TrangThaiHoSo=10)
        third = load_dossier_api(warehouse, _source(server), "run-3", policy=FAST, page_size=50)
        assert (third.rows_read, third.rows_loaded) == (5, 5)
        new_rows = warehouse.query_df(
            "select dossier_code, updated_at, supplement_count from raw.dossier_log "
            "where file_path = 'api/run-3'"
        )
        expected = {(r["MaHoSo"], datetime.strptime(r["NgayCapNhat"], API_TIME)) for r in touched}
        assert (
            set(zip(new_rows.dossier_code, map(_naive, new_rows.updated_at), strict=True))
            == expected
        )
        assert _watermark(warehouse) == watermark + timedelta(hours=2)
        assert warehouse.query_df("select count(*) as n from raw.quarantine").n[0] == 1


def test_values_land_exactly(warehouse_url, token):
    record = {
        "MaHoSo": "H31.13.TNMT-250602-0007",
        "MaDonVi": "313-TNMT",
        "MaTTHC": "1.001190",
        "KenhThucHien": "2",
        "NgayTiepNhan": "20250602081530",
        "NgayHenTra": "20250616170000",
        "NgayKetThucXuLy": None,
        "NgayTra": "",
        "TrangThaiHoSo": 4,
        "SoLanBoSung": 0,
        "PhiLePhi": 50000,
        "DuocThanhToanTrucTuyen": 1,
        "DaSoHoa": 1,
        "CoKetQuaDienTu": 0,
        "TaiSuDung": 0,
        "NgayXinLoi": None,
        "HoTenNguoiNop": nfd("Nguyễn Thị Hằng"),
        "SoGiayTo": "031190004321",
        "NgayCapNhat": "20250602091200",
    }
    refused = dict(
        record, MaHoSo="H31.13.TNMT-250602-0008", PhiLePhi="1.500.000", TrangThaiHoSo=3,
        KenhThucHien=1, NgayHenTra=None, NgayCapNhat="20250602100000",
    )  # fmt: skip
    broken = dict(record, MaHoSo="H31.13.TNMT-250602-0009", NgayTiepNhan="20250231081530",
                  NgayCapNhat="20250602110000")  # fmt: skip
    warehouse = _prepared(warehouse_url)
    with ApiServer([broken, refused, record], TOKEN) as server:
        result = load_dossier_api(warehouse, _source(server), "run-1", policy=FAST)

    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (3, 2, 1)
    rows = warehouse.query_df("select * from raw.dossier_log order by row_number").to_dict(
        "records"
    )
    first, second = rows
    assert first["applicant_name"] == unicodedata.normalize("NFC", "Nguyễn Thị Hằng")
    assert first["applicant_name"] != record["HoTenNguoiNop"]  # it came decomposed
    assert {k: first[k] for k in ("dossier_code", "unit_code", "procedure_code", "applicant_id",
                                  "channel", "status_code", "fee_vnd", "paid_online",
                                  "source_name", "file_path", "row_number")} == {
        "dossier_code": "H31.13.TNMT-250602-0007",
        "unit_code": "313-TNMT",
        "procedure_code": "1.001190",
        "applicant_id": "031190004321",
        "channel": 2,
        "status_code": 4,
        "fee_vnd": 50000,
        "paid_online": 1,
        "source_name": "phong_ban",
        "file_path": "api/run-1",
        "row_number": 1,
    }  # fmt: skip
    assert _naive(first["received_at"]) == datetime(2025, 6, 2, 8, 15, 30)
    assert _naive(first["due_at"]) == datetime(2025, 6, 16, 17, 0, 0)
    assert _naive(first["updated_at"]) == datetime(2025, 6, 2, 9, 12, 0)
    assert pd.isna(first["finished_at"]) and pd.isna(first["returned_at"])
    assert pd.Timestamp(first["file_date"]).date() == datetime.now(LOCAL_TZ).date()
    assert (second["fee_vnd"], second["channel"], second["row_number"]) == (1_500_000, 1, 2)

    quarantine = warehouse.query_df(
        "select file_path, row_number, record_code, column_name, value, rule from raw.quarantine"
    ).to_dict("records")
    assert quarantine == [
        {"file_path": "api/run-1", "row_number": 3, "record_code": "H31.13.TNMT-250602-0009",
         "column_name": "Ngày tiếp nhận", "value": "31/02/2025 08:15:30",
         "rule": "received_at_invalid"}
    ]  # fmt: skip
    batch = warehouse.query_df(
        "select file_path, encoding, rows_read, rows_loaded, rows_quarantined, run_id "
        "from raw.loaded_files"
    ).to_dict("records")
    assert batch == [
        {"file_path": "api/run-1", "encoding": "json", "rows_read": 3, "rows_loaded": 2,
         "rows_quarantined": 1, "run_id": "run-1"}
    ]  # fmt: skip
    marks = warehouse.query_df("select * from raw.api_watermarks").to_dict("records")
    assert len(marks) == 1
    assert _naive(marks[0]["watermark"]) == datetime(2025, 6, 2, 11, 0, 0)
    assert (marks[0]["records_loaded"], marks[0]["run_id"]) == (2, "run-1")


def test_server_down_mid_run_loads_nothing_and_the_next_run_loads_everything_once(
    warehouse_url, records, token
):
    outage = FaultPlan(script=("ok", "ok", "ok", *("503",) * 40))
    warehouse = _prepared(warehouse_url)
    with ApiServer(records, TOKEN, outage) as server:
        with pytest.raises(ApiUnavailable, match=r"no answer after 6 attempts \(last: HTTP 503\)"):
            load_dossier_api(warehouse, _source(server), "run-1", policy=FAST, page_size=20)
        assert _loaded_keys(warehouse) == []
        assert _watermark(warehouse) is None

        server.faults = FaultPlan()
        result = load_dossier_api(warehouse, _source(server), "run-2", policy=FAST, page_size=20)
        loaded = _loaded_keys(warehouse)
        assert result.rows_loaded == len(loaded) == len(set(loaded)) == len(records)


def test_missing_token_variable_is_named_and_the_token_never_shown(duckdb_url, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    warehouse = _prepared(duckdb_url)
    source = Source(name="phong_ban", kind="dossier_api", url="http://127.0.0.1:9/api",
                    token_env=TOKEN_ENV)  # fmt: skip
    with pytest.raises(ApiConfigError, match=f"environment variable {TOKEN_ENV} is not set"):
        load_dossier_api(warehouse, source, "run-1", policy=FAST)


def test_refused_token_is_a_clear_error_without_the_token(duckdb_url, records, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "wrong-token-value-123")
    warehouse = _prepared(duckdb_url)
    with ApiServer(records, TOKEN) as server:
        with pytest.raises(ApiAuthError) as error:
            load_dossier_api(warehouse, _source(server), "run-1", policy=FAST)
        assert server.requests == {"401": 1}  # refused at once, not retried
    message = str(error.value)
    assert "refused the token (HTTP 401)" in message
    assert "wrong-token-value-123" not in message and TOKEN not in message
    assert _loaded_keys(warehouse) == []


def test_retry_after_is_honoured_and_backoff_grows(records):
    waits: list[float] = []
    policy = RetryPolicy(attempts=5, backoff_seconds=0.5, retry_after_max_seconds=30)
    plan = FaultPlan(script=("429", "500", "drop", "503"), retry_after=("7",))
    with (
        ApiServer(records, TOKEN, plan) as server,
        DossierApiClient(server.url, TOKEN, policy=policy, sleep=waits.append) as client,
    ):
        body = client.get_page(BEGINNING, 1)
    assert len(body["data"]) == len(records)
    assert waits == [7.0, 1.0, 2.0, 4.0]  # Retry-After, then 0.5 s doubling per attempt
    assert client.requests == 5


@pytest.mark.parametrize("since_inclusive", [True, False])
def test_a_block_larger_than_a_page_in_one_second_is_reread_when_disturbed(
    records, since_inclusive
):
    """35 records share one second: the client must page by offset, and a record that
    leaves the block (or one inserted before the offset) shifts the pages under it."""
    same_second = [
        dict(r, NgayCapNhat="20250701080000", MaHoSo=f"H31.13.TNMT-250701-{i:04d}")
        for i, r in enumerate(records[:35], start=1)
    ]

    def disturb(server: ApiServer, request: int) -> None:
        if request == 3:  # after pages 1 and 2 of the block: one of page 1 moves away
            server.touch(["H31.13.TNMT-250701-0002"], datetime(2025, 7, 1, 9, 0, 0))
        if request == 5:  # and one is inserted before the offset, in the same second
            server.add([dict(same_second[0], MaHoSo="H31.13.TNMT-250701-0000")])

    with ApiServer(same_second, TOKEN, on_request=disturb, since_inclusive=since_inclusive) as s:
        with DossierApiClient(s.url, TOKEN, page_size=10, policy=FAST) as client:
            fetched = fetch_changes(client.get_page, datetime(2025, 7, 1, 7, 0, 0))
        keys = {dossier_api.record_key(r) for r in fetched.records}
        assert len(keys) == len(fetched.records)
        assert s.versions() <= keys  # every record's current version
        assert len(keys) == len(s.versions()) + 1  # plus the version that moved
        assert fetched.walks >= 2


def test_keyset_paging_restarts_from_the_last_time_not_the_next_offset(records, token):
    with ApiServer(records, TOKEN) as server:
        with DossierApiClient(server.url, TOKEN, page_size=25, policy=FAST) as client:
            fetched = fetch_changes(client.get_page, BEGINNING)
        log = server.request_log
    assert {entry.page for entry in log} == {1}
    assert [e.updated_since for e in log] == sorted(e.updated_since for e in log)
    assert len(fetched.records) == len(records) and fetched.walks == 1


def test_serve_api_command_needs_its_token_variable(monkeypatch):
    monkeypatch.delenv("CCHC_TEST_SERVE_TOKEN", raising=False)
    app = typer.Typer()
    app.command()(serve_api_command)
    outcome = CliRunner().invoke(app, ["--token-env", "CCHC_TEST_SERVE_TOKEN", "--port", "0"])
    assert outcome.exit_code == 2
    assert "CCHC_TEST_SERVE_TOKEN" in outcome.output


def test_department_records_are_deterministic_and_realistic():
    first = department_records(seed=5, per_department=10, end=date(2025, 6, 30))
    assert first == department_records(seed=5, per_department=10, end=date(2025, 6, 30))
    assert {r["MaDonVi"] for r in first} == {"313-TNMT", "313-KTHT", "313-TCKH", "313-NV"}
    assert len({r["MaHoSo"] for r in first}) == 40
    assert all(len(r["NgayCapNhat"]) == 14 and r["NgayCapNhat"] <= "20250630170000"
               for r in first)  # fmt: skip
    assert first == sorted(first, key=lambda r: (r["NgayCapNhat"], r["MaHoSo"]))
