"""Operating cchc every night: write-audit-publish, one run at a time, run history,
failure notifications, the schedule, and backfills that resume."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from flows import pipeline, simulate
from flows.transform import DBT_PROJECT
from flows.warehouse import Warehouse
from tests.test_pipeline import RUN_RECORDS, snapshot

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small_district(tmp_path_factory):
    """Ten days of the sample district: enough for every step, quick to run."""
    return simulate.generate_district(tmp_path_factory.mktemp("small"), seed=3, days=10)


def broken_project(tmp_path: Path, condition: str = "true") -> Path:
    """A copy of the dbt project with one more data test, failing when `condition` holds:
    how a mart breaks on purpose."""
    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT, project, ignore=shutil.ignore_patterns("target", "logs"))
    (project / "tests" / "assert_broken_on_purpose.sql").write_text(
        f"select 1 as broken where {condition}\n", encoding="utf-8"
    )
    return project


def _run(cchc, district: Path, url: str, reports: Path, as_of="2025-06-30", env=None):
    return cchc("run", "--sources", str(district), "--warehouse", url, "--as-of", as_of,
                "--report-dir", str(reports), env=env)  # fmt: skip


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_a_broken_mart_keeps_yesterdays_marts_and_says_why(
    kind, cchc, small_district, tmp_path, request, httpserver
):
    url = (
        f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
        if kind == "duckdb"
        else request.getfixturevalue("pg_url")
    )
    reports = tmp_path / "reports"
    good = _run(cchc, small_district, url, reports, env={"CCHC_LOG_FORMAT": "json"})
    assert good.returncode == 0, good.stderr[-3000:]
    # structured logs: one JSON object per line
    records = [json.loads(line) for line in good.stderr.splitlines() if line.strip()]
    assert records and all({"ts", "level", "logger", "message"} <= set(r) for r in records)
    assert any("published" in r["message"] for r in records)
    warehouse = Warehouse.from_url(url)
    before = snapshot(warehouse)

    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    env = {
        "CCHC_DBT_PROJECT_DIR": str(broken_project(tmp_path)),
        "CCHC_WEBHOOK_URL": httpserver.url_for("/hook"),
    }
    bad = _run(cchc, small_district, url, reports, env=env)
    assert bad.returncode != 0
    reason = bad.stderr.strip().splitlines()[-1]
    assert reason.startswith("cchc: run failed:") and "assert_broken_on_purpose" in reason
    # one line of reason, the last (Prefect's progress log goes before it)
    assert [line for line in bad.stderr.splitlines() if line.startswith("cchc:")] == [reason]

    # BI reads yesterday's marts, row for row
    after = snapshot(warehouse)
    for table in set(before) - RUN_RECORDS:
        if table.startswith("marts."):
            assert after[table] == before[table], f"{table} changed by a failed run"
    history = warehouse.query_df(
        "select status, reason from marts.pipeline_runs order by started_at"
    ).to_dict("records")
    assert [h["status"] for h in history] == ["published", "failed"]
    assert "assert_broken_on_purpose" in history[1]["reason"]

    # the report of the night says so, and the webhook heard it
    html = (reports / "cchc-report-2025-06-30.html").read_text(encoding="utf-8")
    assert "assert_broken_on_purpose" in html
    (request_made, _), *_ = httpserver.log
    message = json.loads(request_made.data)
    assert message["event"] == "cchc.run_failed" and "assert_broken_on_purpose" in message["reason"]
    assert message["warehouse"] == warehouse.display()  # the display form: never a password


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_two_runs_at_once_do_not_interleave(kind, cchc, prefect_harness, small_district,
                                            tmp_path, request):  # fmt: skip
    url = (
        f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
        if kind == "duckdb"
        else request.getfixturevalue("pg_url")
    )
    script = Path(sys.executable).with_name("cchc")
    base = [str(script), "run", "--sources", str(small_district), "--warehouse", url,
            "--as-of", "2025-06-30", "--report-dir", str(tmp_path / "reports")]  # fmt: skip
    env = {**os.environ, "PREFECT_API_URL": prefect_harness}

    def start(wait: str):
        return subprocess.Popen(
            base,
            env={**env, "CCHC_LOCK_WAIT_SECONDS": wait},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    # refused: a second run, started while the first holds the warehouse, says why;
    # waiting: a third runs once the first is done
    first = start("60")  # the probe below may hold the lock file for an instant
    _wait_for_lock(url)
    second = start("0")
    third = start("600")
    out2, err2 = second.communicate(timeout=600)
    assert second.returncode == 3, (out2[-1000:], err2[-2000:])
    assert err2.strip().splitlines()[-1].startswith("cchc: another cchc run is using")
    for p in (first, third):
        _, err = p.communicate(timeout=900)
        assert p.returncode == 0, err[-2000:]
    rows = Warehouse.from_url(url).query_df(
        "select started_at, finished_at, status from marts.pipeline_runs order by started_at"
    )
    assert list(rows.status) == ["published"] * 2
    (_, end), (begin, _) = sorted(zip(rows.started_at, rows.finished_at, strict=True))
    assert end <= begin, f"runs interleaved: {rows}"


def test_a_refused_run_names_the_holder_without_opening_its_duckdb_file(tmp_path):
    """The refusal reads the run lock file: opening the warehouse to read pipeline_runs
    would take DuckDB's file lock, and the holder's next connection would then fail."""
    from flows import runs

    warehouse = Warehouse.from_url(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    refuse = (
        "import sys\n"
        "from flows import runs\n"
        "from flows.warehouse import Warehouse\n"
        "try:\n"
        "    with runs.exclusive(Warehouse.from_url(sys.argv[1]), 0):\n"
        "        pass\n"
        "except runs.RunRefused as exc:\n"
        "    print(exc)\n"
    )
    with runs.exclusive(warehouse, 0):
        runs.started(warehouse, "night-42", "2025-06-30")
        with warehouse.connect():  # the holder mid-step: its DuckDB file is open
            refused = subprocess.run(
                [sys.executable, "-c", refuse, f"duckdb:///{warehouse.path}"],
                capture_output=True, text=True, timeout=120, cwd=ROOT,
            )  # fmt: skip
    assert refused.returncode == 0, refused.stderr[-2000:]
    assert refused.stdout.startswith("another cchc run is using"), refused.stdout
    assert "(run night-42, started " in refused.stdout
    # the lock is free again once the holder is done
    with runs.exclusive(warehouse, 0):
        pass


def _wait_for_lock(url: str, timeout: float = 120) -> None:
    """Until the first run holds the warehouse's run lock (without touching the
    warehouse itself: DuckDB lets one process open its file)."""
    import fcntl

    import psycopg

    from flows.runs import PG_LOCK_KEY

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if url.startswith("duckdb"):
            with open(url.removeprefix("duckdb:///") + ".lock", "a+") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    fcntl.flock(handle, fcntl.LOCK_UN)
                except BlockingIOError:
                    return
        else:
            with psycopg.connect(url) as conn:
                if conn.execute(
                    # advisory locks are per database: another test's run holds the same key
                    "select count(*) from pg_locks where locktype = 'advisory' and objid = %s "
                    "and database = (select oid from pg_database "
                    "where datname = current_database())",
                    [PG_LOCK_KEY & 0xFFFFFFFF],
                ).fetchone()[0]:
                    return
        time.sleep(0.2)
    raise AssertionError("the first run never took the warehouse")


def test_backfill_resumes_from_the_day_that_failed(cchc, tmp_path):
    district = simulate.generate_district(tmp_path / "district", seed=4, days=6, end=_day(6))
    url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    args = ["backfill", "--start", _day(1).isoformat(), "--end", _day(6).isoformat(),
            "--sources", str(district), "--warehouse", url,
            "--report-dir", str(tmp_path / "reports")]  # fmt: skip
    day4 = _day(4).isoformat()
    broken = broken_project(tmp_path, f"'{{{{ var(\"as_of\") }}}}' = '{day4}'")
    failed = cchc(*args, env={"CCHC_DBT_PROJECT_DIR": str(broken)})
    assert failed.returncode != 0
    assert f"backfill stopped at {day4}" in failed.stderr, failed.stderr[-2000:]
    warehouse = Warehouse.from_url(url)
    assert pipeline.published_days(warehouse) == {_day(n).isoformat() for n in range(1, 4)}

    resumed = cchc(*args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "3 already published, 3 to run" in resumed.stdout
    runs = warehouse.query_df("select as_of, status from marts.pipeline_runs order by started_at")
    assert [str(d)[:10] for d in runs.as_of[runs.status == "published"]] == [
        _day(n).isoformat() for n in range(1, 7)
    ]
    # each night saw only its own files: the last night's marts hold every day's dossiers
    loaded_days = warehouse.query_df("select max(file_date) as d from raw.loaded_files").d[0]
    assert str(loaded_days)[:10] == _day(6).isoformat()


def _day(n: int):
    from datetime import date, timedelta

    return date(2025, 6, 1) + timedelta(days=n - 1)


def test_the_nightly_schedule_is_1_30_in_vietnam_and_holds_no_secret(small_district):
    deployment = pipeline.nightly_deployment(str(small_district))
    (schedule,) = deployment.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("30 1 * * *",
                                                                    "Asia/Ho_Chi_Minh")  # fmt: skip
    assert set(deployment.parameters) == {"sources_file"}  # no URL, no as-of: yesterday
    assert deployment.concurrency_limit == 1
    declared = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    (entry,) = declared["deployments"]
    assert entry["schedules"] == [{"cron": pipeline.NIGHTLY_CRON, "timezone": pipeline.TIMEZONE}]
    module, function = entry["entrypoint"].split(":")
    assert (ROOT / module).is_file() and function == pipeline.nightly.fn.__name__


def test_extraction_runs_on_a_local_dask_cluster(cchc, small_district, pg_url, tmp_path):
    """CCHC_DASK_ADDRESS=local: the sources load at once on a Dask cluster started for the
    run (prefect-dask), with the same rows as a run without it; DuckDB refuses, clearly."""
    result = _run(cchc, small_district, pg_url, tmp_path / "r", env={"CCHC_DASK_ADDRESS": "local"})
    assert result.returncode == 0, result.stderr[-3000:]
    warehouse = Warehouse.from_url(pg_url)
    (steps,) = warehouse.query_df("select steps_json from marts.pipeline_runs").steps_json
    assert "extract_load" in json.loads(steps)  # one step for every source, on the cluster
    loaded = warehouse.query_df(
        "select source_name, sum(rows_read) as r, sum(rows_loaded) as l, "
        "sum(rows_quarantined) as q from raw.loaded_files group by 1 order by 1"
    )
    assert list(loaded.source_name) == ["nhiem_vu", "van_ban_di", "xa_an_lao"]
    assert ((loaded.r == loaded.l + loaded.q) & (loaded.r > 0)).all()
    duck = _run(cchc, small_district, f"duckdb:///{tmp_path / 'w.duckdb'}", tmp_path / "d",
                env={"CCHC_DASK_ADDRESS": "local"})  # fmt: skip
    assert duck.returncode != 0 and "needs a PostgreSQL warehouse" in duck.stderr.splitlines()[-1]
