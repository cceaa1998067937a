"""The report: its numbers against marts.data_quality_checks, a failed night, a first
night with no marts, and a 90-day warehouse of 17 communes rendered in time."""

from __future__ import annotations

import html as html_lib
import json
import re
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from flows import audit, report, runs
from flows.warehouse import Warehouse

AS_OF = "2025-06-30"
pytestmark = pytest.mark.xdist_group("sample_district")  # reads the shared runs


def report_html(run: dict) -> str:
    return (run["reports"] / f"cchc-report-{AS_OF}.html").read_text(encoding="utf-8")


def lights_in(html: str) -> dict[str, str]:
    return dict(re.findall(r'<a class="tile \w+"[^>]*data-unit="([^"]+)" data-light="(\w+)"', html))


def expected_lights(warehouse: Warehouse, day: str) -> dict[str, str]:
    """Worst status of each unit or source on the day; green for one seen only earlier."""
    start = date.fromisoformat(day) - timedelta(days=29)
    frame = warehouse.query_df(
        "select entity_code, max(case when period_start = %s and status = 'FAIL' then 2 "
        "when period_start = %s and status = 'WARN' then 1 else 0 end) as worst "
        "from marts.data_quality_checks where entity_type in ('unit', 'source') "
        "and period_start between %s and %s group by entity_code",
        [day, day, start, day],
    )
    colour = {2: "red", 1: "amber", 0: "green"}
    return {r.entity_code: colour[int(r.worst)] for r in frame.itertuples()}


def expected_problems(warehouse: Warehouse, day: str) -> list[tuple[str, int]]:
    """Rows (or dossiers) affected per check; a unit that sent nothing counts once a day."""
    start = date.fromisoformat(day) - timedelta(days=29)
    frame = warehouse.query_df(
        "select check_code, cast(sum(case when check_code in ('file_received', 'freshness') "
        "then 1 else coalesce(records_affected, 0) end) as bigint) as n "
        "from marts.data_quality_checks where status in ('FAIL', 'WARN') "
        "and period_start between %s and %s group by check_code",
        [start, day],
    )
    return sorted(((r.check_code, int(r.n)) for r in frame.itertuples()), key=lambda p: -p[1])


def assert_top_problems(shown: list[tuple[str, int]], every: list[tuple[str, int]]) -> None:
    """The largest ten, largest first (how ties are ordered is the report's own choice)."""
    assert len(shown) == min(report.TOP_PROBLEMS, len(every))
    assert [n for _, n in shown] == [n for _, n in every[: len(shown)]]
    assert set(shown) <= set(every)
    assert {p for p in every if p[1] > shown[-1][1]} <= set(shown)


def problems_in(html: str) -> list[tuple[str, int]]:
    return [(c, int(n)) for c, n in re.findall(r'data-check="([^"]+)" data-affected="(\d+)"', html)]


def section(html: str, anchor: str) -> str:
    start = html.index(f'id="{anchor}"')
    end = html.find("<section", start + 1)
    return html[start : end if end > 0 else len(html)]


# -- the sample district (An Lão), as the pipeline wrote its report


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_traffic_lights_are_the_worst_check_of_each_unit_on_the_day(runs, kind):
    warehouse = runs[kind]["warehouse"]
    html = report_html(runs[kind])
    shown = lights_in(html)
    assert shown == expected_lights(warehouse, AS_OF)
    communes = warehouse.query_df(
        "select unit_code from marts.dim_unit where parent_unit_code = '313' "
        "and unit_type = 'commune'"
    )
    assert set(communes.unit_code) <= set(shown)  # the 17 communes, each with a light
    assert "amber" in shown.values()  # the sample leaves two document files unsent
    for colour, label in (("red", "đỏ"), ("amber", "vàng"), ("green", "xanh")):
        n = sum(1 for c in shown.values() if c == colour)
        assert f'<span class="count {colour}"><b>{n}</b>{label}</span>' in html
    # every light leads to its unit's own page
    for code in shown:
        assert f'<section class="unit" id="don-vi-{code}"' in html
    assert "Xã Bát Trang" in section(html, "den-bao")  # names valid on the as-of day


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_top_problems_are_the_checks_table_grouped_and_ranked(runs, kind, sample_district):
    warehouse = runs[kind]["warehouse"]
    html = report_html(runs[kind])
    assert_top_problems(problems_in(html), expected_problems(warehouse, AS_OF))
    # the sample's deliberately bad rows of the last 30 days are all counted as rejected
    truth = json.loads((sample_district.parent / "_truth" / "bad_rows.json").read_text("utf-8"))
    in_window = [b for b in truth if "2025-06-01" <= Path(b["file"]).stem <= AS_OF]
    assert in_window
    rejected = sum(n for c, n in problems_in(html) if c in rejecting_rules(warehouse))
    assert rejected == len(in_window)
    problems = section(html, "van-de")
    assert "Ngày tiếp nhận trống, sai định dạng hoặc không tồn tại" in problems
    assert "row_unparseable" not in re.sub(r'data-check="[^"]+"', "", problems)  # no rule codes


def rejecting_rules(warehouse: Warehouse) -> set[str]:
    """Row rules that quarantined rows (status FAIL) in the sample."""
    frame = warehouse.query_df(
        "select distinct check_code from marts.data_quality_checks where status = 'FAIL' "
        "and check_code not in ('freshness', 'batch_accounting', 'mart_row_count') "
        "and check_code not like 'dbt.%%'"
    )
    return set(frame.check_code)


def test_units_that_sent_nothing_are_listed_with_their_last_day(runs):
    warehouse = runs["duckdb"]["warehouse"]
    html = report_html(runs["duckdb"])
    silent = warehouse.query_df(
        "select c.entity_code, c.source_name, max(c.check_code = 'freshness') as stale, "
        "(select cast(max(b.period_start) as varchar) from marts.data_quality_checks b "
        " where b.check_code = 'batch_accounting' and b.entity_code = c.entity_code "
        " and b.source_name = c.source_name and b.records_checked > 0) as last_day "
        "from marts.data_quality_checks c where c.period_start = %s and "
        "((c.check_code = 'file_received' and c.status = 'WARN') or "
        " (c.check_code = 'freshness' and c.status = 'FAIL')) group by 1, 2",
        [AS_OF],
    )
    assert len(silent) > 0
    shown = re.findall(r'<tr data-unit="([^"]+)" data-last="([^"]*)"', section(html, "khong-gui"))
    assert sorted(shown) == sorted(zip(silent.entity_code, silent.last_day, strict=True))


def test_due_date_audit_per_unit_with_examples(runs):
    warehouse = runs["duckdb"]["warehouse"]
    html = section(report_html(runs["duckdb"]), "han-giai-quyet")
    audit_rows = warehouse.query_df(
        "select unit_code, dossier_code from marts.dossier_due_date_audit"
    )
    assert len(audit_rows) > 0
    shown = dict(re.findall(r'<tr data-unit="([^"]+)" data-count="(\d+)"', html))
    assert {k: int(v) for k, v in shown.items()} == audit_rows.unit_code.value_counts().to_dict()
    codes = re.findall(r"<code>([^<]+)</code>", html)
    assert codes and set(codes) <= set(audit_rows.dossier_code)


def test_each_unit_page_lists_its_problems_with_an_example(runs):
    warehouse = runs["duckdb"]["warehouse"]
    html = report_html(runs["duckdb"])
    failed = warehouse.query_df(
        "select entity_code, example_code from marts.data_quality_checks "
        "where status = 'FAIL' and period_start >= date '2025-06-01' and example_code is not null"
    )
    assert len(failed) > 0
    for r in failed.itertuples():
        page = section(html, f"don-vi-{r.entity_code}")
        assert f"<code>{r.example_code}</code>" in page
        assert "Bị loại, cần gửi lại" in page


def test_run_history_and_report_hold_no_personal_data_nor_network_reference(runs):
    warehouse = runs["duckdb"]["warehouse"]
    reports = runs["duckdb"]["reports"]
    html = report_html(runs["duckdb"])
    statuses = re.findall(r'<tr data-status="(\w+)">', section(html, "lan-chay"))
    assert statuses == ["published", "published"]  # the rerun, then the first run
    people = warehouse.query_df(
        "select distinct applicant_name, applicant_id from raw.dossier_log "
        "where applicant_name is not null"
    )
    assert len(people) > 100
    pages = [html, *(p.read_text("utf-8") for p in (reports / "gx-data-docs").rglob("*.html"))]
    assert len(pages) > 3  # the report and GX's index, suites and validations
    for page in pages:
        text = html_lib.unescape(page)
        assert not [n for n in people.applicant_name if n in text]
        assert not [i for i in people.applicant_id.dropna() if i in text]
        assert not re.search(r"<(script|link|img)\b[^>]*(src|href)=[\"']https?:", page)
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert 'href="gx-data-docs/index.html"' in html


# -- a failed night, and a first night with nothing published


def copy_marts(source: Warehouse, path: Path) -> Warehouse:
    """A warehouse holding the sample's published marts (read from a copy, not changed)."""
    con = duckdb.connect(str(path))
    con.execute(f"attach '{source.path}' as src (read_only)")
    con.execute("create schema marts")
    for table in ("data_quality_checks", "pipeline_runs", "dim_unit", "dossier_due_date_audit",
                  "dossier_timeliness"):  # fmt: skip
        con.execute(f"create table marts.{table} as select * from src.marts.{table}")
    con.execute("detach src")
    con.close()
    return Warehouse.from_url(f"duckdb:///{path}")


def test_a_failed_night_is_shown_first_over_the_previous_publication(runs, tmp_path):
    warehouse = copy_marts(runs["duckdb"]["warehouse"], tmp_path / "w.duckdb")
    reason = "TransformError: dbt build failed: fct_dossier"
    runs_module_run(warehouse, "20250701T010000-failed", "2025-07-01", reason)
    path = report.write_report(warehouse, "2025-07-01", "20250701T010000-failed", tmp_path / "r")
    assert path.name == "cchc-report-2025-07-01.html"
    html = path.read_text("utf-8")
    banner = section(html, "that-bai")
    assert html.index('id="that-bai"') < html.index('id="tom-tat"') < html.index('id="den-bao"')
    text = " ".join(html_lib.unescape(banner).split())
    assert f"Lần chạy ngày 01/07/2025 thất bại: {reason};" in text
    assert "số liệu dưới đây là của lần công bố trước (số liệu ngày 30/06/2025)" in text
    # yesterday's lights, unchanged
    assert lights_in(html) == lights_in(report_html(runs["duckdb"]))
    assert "ngày 30/06/2025</h2>" in section(html, "den-bao")
    statuses = re.findall(r'<tr data-status="(\w+)">', section(html, "lan-chay"))
    assert statuses[0] == "failed" and statuses[1:] == ["published", "published"]


def runs_module_run(warehouse: Warehouse, run_id: str, as_of: str, reason: str) -> None:
    runs.started(warehouse, run_id, as_of)
    runs.finished(warehouse, run_id, "failed", [], {"prepare": 0.4}, reason)


def test_a_first_night_that_failed_still_renders_and_says_so(tmp_path):
    warehouse = Warehouse.from_url(f"duckdb:///{tmp_path / 'w.duckdb'}")
    # nothing at all yet: not even the run history
    html = report.write_report(warehouse, AS_OF, "r0", tmp_path / "r0").read_text("utf-8")
    assert "Chưa có kết quả kiểm tra dữ liệu nào" in html
    assert "bảng lịch sử chưa có trong kho" in html
    # the pipeline's own first steps, then a failure
    warehouse.prepare()
    runs_module_run(warehouse, "r1", AS_OF, "PipelineError: every source failed: xa_an_lao")
    html = report.write_report(warehouse, AS_OF, "r1", tmp_path / "r1").read_text("utf-8")
    banner = " ".join(html_lib.unescape(section(html, "that-bai")).split())
    assert "Lần chạy ngày 30/06/2025 thất bại: PipelineError: every source failed" in banner
    assert "chưa có lần công bố nào" in banner
    for anchor in ("den-bao", "xu-huong", "khong-gui", "van-de", "han-giai-quyet", "lan-chay"):
        assert f'id="{anchor}"' in html
    assert re.findall(r'<tr data-status="(\w+)">', html) == ["failed"]


# -- 90 days x 17 communes, synthetic, in time


COMMUNES = [f"{10001 + i}" for i in range(17)]
DISTRICT = "100"


def synthetic_warehouse(path: Path, as_of: date) -> tuple[Warehouse, dict[str, str]]:
    """Checks of 90 days for 17 communes and their district, with a few known problems on
    the as-of day; raw rows of that day for the Data Docs. Returns the lights expected."""
    warehouse = Warehouse.from_url(f"duckdb:///{path}")
    warehouse.prepare()
    days = [as_of - timedelta(days=i) for i in range(90)]
    rows = []

    def check(code, unit, day, status, affected=0, checked=None, source="xa", example=None):
        rows.append({"check_code": code, "check_name": code, "entity_type": "unit",
                     "entity_code": unit, "period_start": day, "status": status,
                     "records_affected": affected, "records_checked": checked,
                     "message_vi": f"{unit}: {code}", "severity": "critical",
                     "example_code": example, "source_name": source})  # fmt: skip

    for k, unit in enumerate([DISTRICT, *COMMUNES]):
        for i, day in enumerate(days):
            if day.weekday() >= 5 or (unit == COMMUNES[1] and i < 5):  # 10002 went silent
                continue
            # on the as-of day: 3 rows rejected from 10001 only, no warnings anywhere
            bad = (1 if i and (i + k) % 7 == 0 else 0) or (3 if not i and unit == "10001" else 0)
            check("batch_accounting", unit, day, "PASS", bad, 40 + k, "xa")
            if i or unit != COMMUNES[2]:  # 10003 sent no document file on the as-of day
                check("batch_accounting", unit, day, "PASS", 0, 5, "vb")
            if bad:
                check("received_at_invalid", unit, day, "FAIL", bad,
                      example=f"H{unit}-{day:%y%m%d}-9001")  # fmt: skip
            if i and (i + k) % 5 == 0:
                check(
                    "procedure_unknown", unit, day, "WARN", 2, example=f"H{unit}-{day:%y%m%d}-0002"
                )
        for source in ("xa", "vb"):
            check("freshness", unit, as_of, "FAIL" if unit == COMMUNES[1] else "PASS",
                  source=source)  # fmt: skip
            sent = unit != COMMUNES[1] and not (unit == COMMUNES[2] and source == "vb")
            check("file_received", unit, as_of, "PASS" if sent else "WARN", 0 if sent else 1,
                  source=source)  # fmt: skip
    for n in range(150):
        rows.append({"check_code": f"dbt.test_{n}", "check_name": "t", "entity_type": "model",
                     "entity_code": "fct_dossier", "status": "PASS", "records_affected": 0,
                     "message_vi": "đạt", "severity": "warning"})  # fmt: skip
    checks = pd.DataFrame(rows)
    checks["run_id"] = "synthetic"
    checks["checked_at"] = datetime(2025, 7, 1, 1, 0)
    checks["period_start"] = pd.to_datetime(checks.period_start)
    for column, kind in audit.COLUMNS.items():
        if column not in checks:
            checks[column] = None
        if kind == "bigint":
            checks[column] = pd.to_numeric(checks[column]).astype("Int64")
    names = [(DISTRICT, "Huyện Thử Nghiệm", "district", None)]
    names += [(c, f"Xã Số {i + 1}", "commune", DISTRICT) for i, c in enumerate(COMMUNES)]
    due = [
        {"dossier_key": f"k{u}{n}", "dossier_code": f"H{u}-250{n % 9 + 1:02d}-{n:04d}",
         "unit_code": u, "procedure_code": "1.001193",
         "received_at": datetime(2025, 4, 1) + timedelta(hours=13 * n),
         "due_at": datetime(2025, 4, 9) + timedelta(hours=13 * n),
         "legal_due_at": datetime(2025, 4, 8) + timedelta(hours=13 * n), "days_later": 1}
        for u in COMMUNES for n in range(30)
    ]  # fmt: skip
    with warehouse.transaction() as conn:
        columns = ", ".join(f"{c} {t}" for c, t in audit.COLUMNS.items())
        conn.execute(f"create table marts.data_quality_checks ({columns})")
        conn.load_frame("marts.data_quality_checks", checks, list(audit.COLUMNS))
        for statement in runs.create_statements():
            conn.execute(statement)
        conn.execute(
            "create table marts.dim_unit (unit_code varchar, unit_name varchar, "
            "unit_type varchar, parent_unit_code varchar, valid_from date, valid_to date)"
        )
        for code, name, kind, parent in names:
            conn.execute("insert into marts.dim_unit values (%s, %s, %s, %s, null, null)",
                         [code, name, kind, parent])  # fmt: skip
        conn.execute(
            "create table marts.dossier_due_date_audit (dossier_key varchar, dossier_code "
            "varchar, unit_code varchar, procedure_code varchar, received_at timestamp, "
            "due_at timestamp, legal_due_at timestamp, days_later integer)"
        )
        conn.load_frame("marts.dossier_due_date_audit", pd.DataFrame(due), list(due[0]))
        for n in range(12):
            conn.execute(
                "insert into marts.pipeline_runs (run_id, as_of, started_at, finished_at, "
                "status, rows_read, rows_loaded, rows_quarantined, sources_json) "
                "values (%s, %s, %s, %s, 'published', 700, 699, 1, %s)",
                [f"run{n}", as_of - timedelta(days=n), datetime(2025, 7, 1, 1) - timedelta(days=n),
                 datetime(2025, 7, 1, 1, 0, 40) - timedelta(days=n),
                 json.dumps({"xa": {"kind": "dossier_files"}, "vb": {"kind": "document_files"}})],
            )  # fmt: skip
        raw_rows(conn, as_of)
    lights = {u: "green" for u in [DISTRICT, *COMMUNES]}
    lights.update({COMMUNES[0]: "red", COMMUNES[1]: "red", COMMUNES[2]: "amber"})
    return warehouse, lights


def raw_rows(conn, as_of: date) -> None:
    """The as-of day's loaded dossier rows, with a personal-data pair that must not leak."""
    files, dossiers = [], []
    for unit in COMMUNES:
        path = f"{unit}/{as_of.isoformat()}.csv"
        files.append({"source_name": "xa", "file_path": path, "file_date": as_of,
                      "unit_folder": unit, "file_sha256": "0" * 64, "file_bytes": 1,
                      "encoding": "utf-8", "rows_read": 40, "rows_loaded": 40,
                      "rows_quarantined": 0, "load_id": "synthetic:1", "run_id": "synthetic",
                      "loaded_at": datetime(2025, 7, 1, 1)})  # fmt: skip
        for n in range(40):
            received = datetime.combine(as_of, datetime.min.time()) + timedelta(hours=7, minutes=n)
            dossiers.append({
                "source_name": "xa", "file_path": path, "file_date": as_of, "row_number": n + 2,
                "dossier_code": f"H{unit}-{as_of:%y%m%d}-{n:04d}", "unit_code": unit,
                "procedure_code": "1.001193", "channel": 1 + n % 3, "received_at": received,
                "due_at": received + timedelta(days=3), "finished_at": None, "returned_at": None,
                "status_code": 2, "supplement_count": 0, "fee_vnd": 0, "paid_online": 0,
                "digitized": 1, "e_result": 0, "reused": 0, "apology_at": None,
                "applicant_name": "Trần Thị Riêng Tư", "applicant_id": "079123456789",
                "updated_at": received, "load_id": "synthetic:1",
            })  # fmt: skip
    conn.load_frame("raw.loaded_files", pd.DataFrame(files), list(files[0]))
    conn.load_frame("raw.dossier_log", pd.DataFrame(dossiers), list(dossiers[0]))


def test_ninety_days_of_seventeen_communes_render_in_time(tmp_path):
    as_of = date(2025, 6, 30)
    warehouse, lights = synthetic_warehouse(tmp_path / "w.duckdb", as_of)
    started = time.perf_counter()
    path = report.write_report(warehouse, as_of.isoformat(), "synthetic", tmp_path / "r")
    seconds = time.perf_counter() - started
    print(f"\nreport of 90 days x 17 communes: {seconds:.2f} s -> {path}")
    assert seconds < 10
    html = path.read_text("utf-8")
    assert lights_in(html) == lights
    assert_top_problems(problems_in(html), expected_problems(warehouse, as_of.isoformat()))
    silent = re.findall(r'<tr data-unit="([^"]+)" data-last="([^"]*)" data-stale="(\w+)"', html)
    # 10002: nothing after Wednesday 25/06 (both kinds); 10003: no document file on Monday
    assert sorted(silent) == [
        (COMMUNES[1], "2025-06-25", "true"), (COMMUNES[1], "2025-06-25", "true"),
        (COMMUNES[2], "2025-06-27", "false"),
    ]  # fmt: skip
    assert html.count('<section class="unit"') == 18
    assert len(re.findall(r'<rect class="accepted"', html)) == 30
    visible = re.sub(r"<[^>]+>", " ", section(html, "van-de"))
    assert "received_at_invalid" not in visible and "procedure_unknown" not in visible
    assert "Mã thủ tục hành chính không có trong danh mục thủ tục" in visible  # the suite's words
    assert "tệp hồ sơ 680 dòng" in section(html, "ky-thuat")  # 17 x 40 rows validated
    docs = tmp_path / "r" / "gx-data-docs"
    validation = next((docs / "validations" / "dossier_files").rglob("*.html")).read_text("utf-8")
    for page in [html, validation]:
        assert "Trần Thị Riêng Tư" not in page and "079123456789" not in page
