"""Task, digitisation, apology and 766 marts against source files with known answers.

A small district of registered units (district T01, communes X1 and X2, department
T01-TNMT) gets hand-written dossier, task and document files; `cchc run` loads them
on both warehouses and every figure below is worked out by hand.
"""

from __future__ import annotations

import csv
import math
import uuid
from decimal import Decimal

import pandas as pd
import psycopg
import pytest

from flows.sources import document_files, dossier_files, task_files
from flows.warehouse import Warehouse
from tests.conftest import PG_ADMIN

pytestmark = pytest.mark.slow

AS_OF = "2025-06-30"
Q2 = ("quarter", "2025-04-01")


def _write(path, header, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as out:
        csv.writer(out).writerows([header, *rows])


def _dossier(n, *, channel=1, fee="0", paid=0, due="09/05/2025 17:00", finished="",
             status=4, apology="", digitized=1, e_result=0, reused=0):  # fmt: skip
    return [f"X1-250505-{n:04d}", "X1", "1.001193", channel, "05/05/2025 08:00", due, finished,
            "", status, 0, fee, paid, digitized, e_result, reused, apology, "Lê Văn Nam",
            "031190009999", "05/05/2025 09:00"]  # fmt: skip


DOSSIERS = [
    # eight fee-bearing dossiers, one paid online: online payment 1/8 = 12.50%
    _dossier(1, fee="50.000", paid=1, channel=2, finished="06/05/2025 10:00", status=10),
    *(_dossier(n, fee="50.000", finished="06/05/2025 10:00", status=10) for n in range(2, 9)),
    # free dossiers paid "online" do not count for the payment rate
    _dossier(9, fee="0", paid=1, channel=2, finished="06/05/2025 10:00", status=10),
    # late, with an apology sent before the due date: timely
    _dossier(10, finished="12/05/2025 10:00", status=10, apology="08/05/2025", e_result=1),
    # overdue at the as-of date, apology after the due date: not timely
    _dossier(11, apology="12/05/2025", reused=1),
    # overdue at the as-of date, no apology
    _dossier(12, digitized=0),
]


def _task(n, deadline, completed=""):
    return [f"NV-{n:03d}", "Báo cáo", "UBND huyện", "T01-TNMT", "01/04/2025", deadline,
            completed, "30/06/2025 08:00"]  # fmt: skip


TASKS = [
    *(_task(n, "20/05/2025", "19/05/2025") for n in range(1, 14)),  # 13 done on time
    *(_task(n, "20/05/2025", "22/05/2025") for n in range(14, 21)),  # 7 done late
    *(_task(n, "10/06/2025") for n in range(21, 24)),  # 3 open and overdue
    _task(24, "30/06/2025"),  # due on the period's last day, open: not overdue
]

DOCUMENTS_X2 = [  # a unit with documents but no dossiers: 2 of 3 signed
    ["1/UBND", "X2", "02/06/2025", 1],
    ["2/UBND", "X2", "03/06/2025", 1],
    ["3/UBND", "X2", "04/06/2025", 0],
]


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    root = tmp_path_factory.mktemp("t01")
    (root / "units.csv").write_text(
        "unit_code,unit_name,unit_type,parent_unit_code\n"
        "T01,Huyện Thử,district,\n"
        "X1,Xã Một,commune,T01\n"
        "X2,Xã Hai,commune,T01\n"
        "T01-TNMT,Phòng Tài nguyên và Môi trường,department,T01\n",
        encoding="utf-8",
    )
    _write(root / "dossiers" / "X1" / "2025-05-05.csv", list(dossier_files.COLUMNS), DOSSIERS)
    _write(root / "tasks" / "2025-06-30.csv", list(task_files.COLUMNS), TASKS)
    _write(root / "documents" / "X2" / "2025-06-04.csv", list(document_files.COLUMNS), DOCUMENTS_X2)
    (root / "sources.yml").write_text(
        "units: units.csv\n"
        "sources:\n"
        "  - {name: mot_cua, kind: dossier_files, path: dossiers}\n"
        "  - {name: nhiem_vu, kind: task_files, path: tasks}\n"
        "  - {name: van_ban_di, kind: document_files, path: documents}\n",
        encoding="utf-8",
    )
    return root


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def marts(request, cchc, district, tmp_path_factory):
    if request.param == "duckdb":
        url = f"duckdb:///{tmp_path_factory.mktemp('duck') / 'warehouse.duckdb'}"
    else:
        name = f"cchc_test_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'create database "{name}"')
        url = f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"
    reports = tmp_path_factory.mktemp("reports")
    result = cchc("run", "--sources", str(district / "sources.yml"), "--warehouse", url,
                  "--as-of", AS_OF, "--report-dir", str(reports))  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    warehouse = Warehouse.from_url(url)

    def query(sql: str, params=()) -> list[dict]:
        rows = warehouse.query_df(sql, list(params)).astype(object).to_dict("records")
        return [{k: _plain(v) for k, v in row.items()} for row in rows]

    yield query
    if request.param == "postgres":
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


def _plain(value):
    """Both engines' values as Python ones: rates (2 decimals) as Decimal, NULL as None."""
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float):
        return Decimal(f"{value:.2f}")
    return value.item() if hasattr(value, "item") else value


def _one(rows: list[dict]) -> dict:
    assert len(rows) == 1, rows
    return {k: (str(v) if hasattr(v, "isoformat") else v) for k, v in rows[0].items()}


def test_department_tasks_at_the_quarter_end(marts):
    row = _one(marts(
        "select * from marts.task_overdue_by_department "
        "where period_grain = %s and period_start = %s and department_code = 'T01-TNMT'", Q2
    ))  # fmt: skip
    assert (row["assigned"], row["done_on_time"], row["done_late"]) == (24, 13, 7)
    assert (row["open_on_time"], row["open_overdue"]) == (1, 3)
    assert row["late_share"] == Decimal("41.67")  # (7 + 3) / 24
    # the district row counts its department's tasks
    district = _one(marts(
        "select assigned, late_share from marts.task_overdue_by_department "
        "where period_grain = %s and period_start = %s and department_code = 'T01'", Q2
    ))  # fmt: skip
    assert district == {"assigned": 24, "late_share": Decimal("41.67")}


def test_department_tasks_per_month(marts):
    rows = marts(
        "select period_start, assigned, done_late, open_on_time, open_overdue, late_share "
        "from marts.task_overdue_by_department where period_grain = 'month' "
        "and department_code = 'T01-TNMT' order by period_start"
    )
    assert [(str(r["period_start"])[:10], r["assigned"], r["done_late"], r["open_on_time"],
             r["open_overdue"], r["late_share"]) for r in rows] == [
        ("2025-05-01", 20, 7, 0, 0, Decimal("35.00")),
        ("2025-06-01", 4, 0, 1, 3, Decimal("75.00")),
    ]  # fmt: skip


def test_online_payment_counts_fee_bearing_dossiers_only(marts):
    row = _one(marts(
        "select * from marts.digitization "
        "where period_grain = %s and period_start = %s and unit_code = 'X1'", Q2
    ))  # fmt: skip
    assert (row["dossiers_received"], row["online_dossiers"]) == (12, 2)
    assert row["online_dossier_rate"] == Decimal("16.67")
    assert (row["fee_dossiers"], row["paid_online_dossiers"]) == (8, 1)
    assert row["online_payment_rate"] == Decimal("12.50")
    assert (row["digitized_dossiers"], row["digitization_rate"]) == (11, Decimal("91.67"))
    assert (row["e_result_dossiers"], row["e_result_rate"]) == (1, Decimal("8.33"))
    assert (row["reused_dossiers"], row["reuse_rate"]) == (1, Decimal("8.33"))
    # no documents: counts 0, rate NULL rather than 0
    assert (row["documents_issued"], row["digital_signature_rate"]) == (0, None)


def test_a_unit_with_documents_but_no_dossiers(marts):
    row = _one(marts(
        "select * from marts.digitization "
        "where period_grain = %s and period_start = %s and unit_code = 'X2'", Q2
    ))  # fmt: skip
    assert (row["documents_issued"], row["documents_signed"]) == (3, 2)
    assert row["digital_signature_rate"] == Decimal("66.67")
    assert row["dossiers_received"] == 0
    assert row["online_dossier_rate"] is None and row["online_payment_rate"] is None
    # the district rolls up both communes
    district = _one(marts(
        "select dossiers_received, documents_issued from marts.digitization "
        "where period_grain = %s and period_start = %s and unit_code = 'T01'", Q2
    ))  # fmt: skip
    assert district == {"dossiers_received": 12, "documents_issued": 3}


def test_apology_letters_per_dossier_and_per_unit(marts):
    letters = marts(
        "select dossier_code, timeliness, apology_sent, apology_in_time "
        "from marts.apology_letters order by dossier_code"
    )
    assert [tuple(r.values()) for r in letters] == [
        ("X1-250505-0010", "late", True, True),
        ("X1-250505-0011", "in_progress_overdue", True, False),
        ("X1-250505-0012", "in_progress_overdue", False, False),
    ]
    row = _one(marts(
        "select * from marts.apology_letters_by_unit "
        "where period_grain = %s and period_start = %s and unit_code = 'X1'", Q2
    ))  # fmt: skip
    assert (row["late_or_overdue"], row["with_apology"], row["with_timely_apology"]) == (3, 2, 1)
    assert row["without_timely_apology_rate"] == Decimal("66.67")


def test_service_index_scores_what_has_a_feed_and_says_how_much(marts):
    rows = {
        r["indicator_code"]: r
        for r in marts(
            "select indicator_code, value_pct, points, max_points from marts.service_index_766 "
            "where period_grain = %s and period_start = %s and unit_code = 'X1'",
            Q2,
        )
    }
    # 2.1: (early + on time + in progress on time) / (resolved + in progress) = 9 / 12
    assert rows["2.1"]["value_pct"] == Decimal("75.00")
    assert rows["2.1"]["points"] == Decimal("15.00")  # linear: 75% of 20
    assert rows["4.2"]["points"] == Decimal("0.75")  # 12.50% of 6 (full at 100%)
    assert rows["4.1"]["points"] == Decimal("4.00")  # 16.67% x 12 / 50 = 4.0008
    assert rows["3.2"]["points"] == Decimal("4.00")  # 91.67% is above 80%: full
    assert rows["1.1"]["value_pct"] is None and rows["1.1"]["points"] is None  # no feed
    assert rows["total"]["max_points"] == 50  # 20 + 6 + 4 + 2 + 12 + 6 were computable
    assert rows["total"]["points"] == sum(
        r["points"] for c, r in rows.items() if c != "total" and r["points"] is not None
    )
    assert sum(r["max_points"] for c, r in rows.items() if c != "total") == 100
