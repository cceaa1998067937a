"""DOMAIN.md §4 cross-check: Lâm Đồng, Q1 2024, rebuilt from dossier rows."""

from __future__ import annotations

import datetime as dt

import pytest

from flows.sources.dossier_files import COLUMNS
from flows.warehouse import Warehouse

pytestmark = pytest.mark.slow

# Published figures: 151,295 resolved (148,761 early or on time, 2,534 late),
# 8,550 pending (7,815 within deadline, 735 overdue): resolved on time 98.33%.
OUTCOMES = {"on_time": 148_761, "late": 2_534, "open_on_time": 7_815, "open_overdue": 735}
Q1 = dt.date(2024, 1, 1)


def _fmt(moment: dt.datetime) -> str:
    return moment.strftime("%d/%m/%Y %H:%M:%S")


def _rows():
    sequence: dict[dt.date, int] = {}
    for outcome, count in OUTCOMES.items():
        for i in range(count):
            if outcome == "open_on_time":  # received late March, due in April
                received = dt.datetime(2024, 3, 20 + i % 10, 8, 0)
                due = dt.datetime(2024, 4, 5, 17, 0)
                finished = None
            elif outcome == "open_overdue":  # due in March, still open on 31 March
                received = dt.datetime(2024, 2, 20 + i % 5, 9, 0)
                due = dt.datetime(2024, 3, 15, 17, 0)
                finished = None
            else:
                received = dt.datetime(2024, 1 + i % 2, 2 + i % 27, 7 + i % 9, 30)
                due = received + dt.timedelta(days=10)
                late = outcome == "late"
                # a third of the on-time ones finish exactly on the due date
                delta = (
                    dt.timedelta(days=13) if late else dt.timedelta(days=10 if i % 3 == 0 else 4)
                )
                finished = received + delta
            day = received.date()
            sequence[day] = sequence.get(day, 0) + 1
            code = f"H68-{day:%y%m%d}-{sequence[day]:04d}"
            status = "10" if finished else "4"
            yield [
                code, "68", "1.001193", "2", _fmt(received), _fmt(due),
                _fmt(finished) if finished else "", _fmt(finished) if finished else "",
                status, "0", "0", "0", "1", "1", "0", "", "", "",
                _fmt(finished or received),
            ]  # fmt: skip


def test_lam_dong_q1_2024_resolved_on_time_rate_is_98_33(tmp_path, cchc):
    folder = tmp_path / "sources" / "dossiers" / "68"
    folder.mkdir(parents=True)
    lines = [",".join(COLUMNS)] + [",".join(r) for r in _rows()]
    (folder / "2024-03-31.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    sources = tmp_path / "sources" / "sources.yml"
    sources.write_text(
        "sources:\n  - name: lam_dong\n    kind: dossier_files\n    path: dossiers\n"
    )
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"

    result = cchc("run", "--sources", str(sources), "--warehouse", url, "--as-of", "2024-03-31")
    assert result.returncode == 0, result.stderr[-3000:]

    row = (
        Warehouse.from_url(url)
        .query_df(
            "select * from marts.dossier_timeliness where unit_code = '68' "
            "and period_grain = 'quarter' and period_start = date '2024-01-01'"
        )
        .iloc[0]
    )
    assert row.received == 159_845
    assert row.resolved == 151_295
    assert row.early + row.on_time == 148_761
    assert row.late == 2_534
    assert (row.in_progress_on_time, row.in_progress_overdue) == (7_815, 735)
    assert float(row.on_time_rate_resolved) == 98.33
    assert float(row.on_time_rate_766) == 97.95  # (148,761 + 7,815) / 159,845
    assert float(row.late_rate_need_to_process) == 2.05  # (2,534 + 735) / 159,845
