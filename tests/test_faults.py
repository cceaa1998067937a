"""Faults a real night meets: the process killed while loading, building or publishing,
the warehouse connection dropped, an API source down for a whole run, a report folder
that cannot be written. Each time nothing is lost or duplicated and BI keeps whole marts."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from flows import simulate
from flows.warehouse import Warehouse
from tests.test_incremental import _marts

pytestmark = pytest.mark.slow

AS_OF = "2025-06-30"
RAW_LOGS = ["dossier_log", "task_log", "document_log"]


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    """(folder, held back): a ten-day district without its last day, and that day's files
    (the second night)."""
    sources = simulate.generate_district(tmp_path_factory.mktemp("district"), seed=6, days=10)
    root, held = sources.parent, tmp_path_factory.mktemp("held")
    for file in root.rglob(f"{AS_OF}.*"):
        target = held / file.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        file.rename(target)
    assert any(held.rglob("*"))
    return root, held


def _copy(district, tmp_path: Path) -> tuple[Path, Path]:
    root, held = district
    shutil.copytree(root, tmp_path / "district")
    return tmp_path / "district", held


def _second_night(root: Path, held: Path) -> None:
    shutil.copytree(held, root, dirs_exist_ok=True)


def _url(kind: str, tmp_path: Path, request, name: str) -> str:
    if kind == "duckdb":
        return f"duckdb:///{tmp_path / f'{name}.duckdb'}"
    return request.getfixturevalue("pg_url") if name == "a" else _pg_database(request)


def _pg_database(request) -> str:
    """A second fresh database in the same test (pg_url gives one per test)."""
    from tests.conftest import PG_ADMIN

    name = f"cchc_test_ref_{os.getpid()}_{int(time.time() * 1000) % 10**9}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')

    def drop():
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')

    request.addfinalizer(drop)
    return f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"


def _args(root: Path, url: str, reports: Path) -> list[str]:
    return ["run", "--sources", str(root / "sources.yml"), "--warehouse", url,
            "--as-of", AS_OF, "--report-dir", str(reports)]  # fmt: skip


def _no_duplicates(warehouse: Warehouse) -> None:
    for table in RAW_LOGS:
        rows = warehouse.query_df(
            f"select count(*) as n, count(distinct source_name || '|' || file_path || '|' || "
            f"cast(row_number as varchar)) as keys from raw.{table}"
        )
        assert rows.n[0] == rows["keys"][0] > 0, f"raw.{table} holds a row twice"
    files = warehouse.query_df(
        "select count(*) as n, count(distinct source_name || '|' || file_path) as keys "
        "from raw.loaded_files"
    )
    assert files.n[0] == files["keys"][0]


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_a_run_killed_while_loading_building_or_publishing_loses_and_duplicates_nothing(
    kind, cchc, district, tmp_path, request
):
    root, held = _copy(district, tmp_path)
    url = _url(kind, tmp_path, request, "a")
    reports = tmp_path / "reports"
    first = cchc(*_args(root, url, reports))
    assert first.returncode == 0, first.stderr[-3000:]
    warehouse = Warehouse.from_url(url)
    yesterday = _marts(warehouse)

    _second_night(root, held)
    _report_folder_faults(cchc, root, url, tmp_path, request, yesterday)
    # SIGKILL: no finally, no rollback by cchc; the warehouse's own recovery must hold
    for point in ("load.group_written@2", "dbt.node_finished@12", "publish.mart_copied@3"):
        killed = cchc(*_args(root, url, reports), env={"CCHC_FAILPOINT": point})
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr[-2000:])
        assert _marts(warehouse) == yesterday, f"BI saw part of a night killed at {point}"
    rerun = cchc(*_args(root, url, reports))
    assert rerun.returncode == 0, rerun.stderr[-3000:]

    # the same files in one night never interrupted (an incremental night equals a full
    # build: tests/test_incremental.py)
    ref_root, _ = _copy(district, tmp_path / "ref")
    _second_night(ref_root, held)
    ref_url = _url(kind, tmp_path, request, "ref")
    assert cchc(*_args(ref_root, ref_url, tmp_path / "ref_reports")).returncode == 0
    assert _marts(warehouse) == _marts(Warehouse.from_url(ref_url))
    _no_duplicates(warehouse)
    statuses = warehouse.query_df("select status from marts.pipeline_runs order by started_at")
    failed = ["failed"] * (len(statuses) - 5)  # the report folder's cases
    assert list(statuses.status) == ["published", *failed, "interrupted", "interrupted",
                                     "interrupted", "published"]  # fmt: skip


def _report_folder_faults(cchc, root, url, tmp_path, request, yesterday) -> None:
    """A report folder that cannot be written, or on a full disk, stops the run before
    it changes anything."""
    warehouse = Warehouse.from_url(url)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    folders = {"unwritable": blocker / "reports"}
    full = tmp_path / "full"
    full.mkdir()
    if os.geteuid() == 0:  # a real full disk: a tiny tmpfs, filled to the last byte
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(full)], check=True)
        request.addfinalizer(lambda: subprocess.run(["umount", "-l", str(full)], check=False))
        with open(full / "filler", "wb") as filler, pytest.raises(OSError):
            while True:
                filler.write(b"x" * 65536)
                filler.flush()
        folders["full"] = full / "reports"
    before = warehouse.query_df("select count(*) as n from raw.loaded_files").n[0]
    for case, folder in folders.items():
        bad = cchc(*_args(root, url, folder))
        assert bad.returncode == 1, (case, bad.stderr[-2000:])
        reason = bad.stderr.strip().splitlines()[-1]
        assert f"the report folder {folder} cannot be written" in reason, reason
        assert _marts(warehouse) == yesterday, case
        after = warehouse.query_df("select count(*) as n from raw.loaded_files").n[0]
        assert after == before, case  # nothing loaded either


def _paused_run(prefect_harness, args: list[str], point: str, marks: Path):
    script = Path(sys.executable).with_name("cchc")
    env = {**os.environ, "PREFECT_API_URL": prefect_harness, "CCHC_FAILPOINT_DIR": str(marks),
           "CCHC_FAILPOINT": f"{point}:pause"}  # fmt: skip
    run = subprocess.Popen([str(script), *args], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)  # fmt: skip
    name = point.split("@")[0]
    deadline = time.monotonic() + 300
    while not (marks / f"{name}.reached").exists():
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()[1][-2000:]
        time.sleep(0.2)
    return run, marks / f"{name}.release"


def _drop_connections(url: str) -> int:
    """What a warehouse restart or a network cut does to every connection of the run."""
    database = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
        return admin.execute(
            "select count(pg_terminate_backend(pid)) from pg_stat_activity "
            "where datname = %s and pid <> pg_backend_pid()",
            [database],
        ).fetchone()[0]


def test_a_dropped_warehouse_connection_is_retried_or_fails_cleanly(
    cchc, prefect_harness, district, tmp_path, pg_url
):
    root, held = _copy(district, tmp_path)
    _second_night(root, held)
    args = _args(root, pg_url, tmp_path / "reports")
    marks = tmp_path / "marks"
    marks.mkdir()
    warehouse = Warehouse.from_url(pg_url)

    # while loading: the load step is retried, the night publishes, every file once
    run, release = _paused_run(prefect_harness, args, "load.group_written@2", marks)
    assert _drop_connections(pg_url) >= 1
    release.touch()
    _, err = run.communicate(timeout=600)
    assert run.returncode == 0, err[-2000:]
    assert "terminating connection" in err  # the drop did happen, and was retried
    _no_duplicates(warehouse)
    files = {p for p in root.rglob("*.*") if p.suffix in (".csv", ".xlsx") and p.parent != root}
    loaded = warehouse.query_df("select count(*) as n from raw.loaded_files").n[0]
    assert loaded == len(files)
    published = _marts(warehouse)

    # while publishing: a clean failure, one line naming the connection, marts whole
    run, release = _paused_run(prefect_harness, args, "publish.mart_copied@2", marks)
    assert _drop_connections(pg_url) >= 1
    release.touch()
    _, err = run.communicate(timeout=600)
    assert run.returncode == 1, err[-2000:]
    reason = err.strip().splitlines()[-1]
    assert reason.startswith("cchc: run failed:") and "connection" in reason.lower(), reason
    assert _marts(warehouse) == published
    rerun = cchc(*args)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert _marts(warehouse) == published


def test_a_duckdb_file_taken_by_another_process_mid_run_fails_cleanly(
    cchc, prefect_harness, district, tmp_path
):
    """DuckDB is embedded: there is no connection to drop. Its way of losing the warehouse
    mid-run is another process opening the file between two steps (a DBA's duckdb shell,
    a BI tool opened read-write): the next step cannot open it. The run fails with one
    line saying so, the marts stay whole, and the rerun publishes the night."""
    root, held = _copy(district, tmp_path)
    path = tmp_path / "warehouse.duckdb"
    args = _args(root, f"duckdb:///{path}", tmp_path / "reports")
    assert cchc(*args).returncode == 0
    warehouse = Warehouse.from_url(f"duckdb:///{path}")
    yesterday = _marts(warehouse)
    _second_night(root, held)
    marks = tmp_path / "marks"
    marks.mkdir()
    run, release = _paused_run(prefect_harness, args, "after.transform", marks)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; held = duckdb.connect(sys.argv[1]); "
         "print('held', flush=True); time.sleep(600)", str(path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        release.touch()
        _, err = run.communicate(timeout=600)
    finally:
        holder.kill()
        holder.wait()
    assert run.returncode == 1, err[-2000:]
    reason = err.strip().splitlines()[-1]
    assert reason.startswith("cchc: run failed:") and "lock" in reason.lower(), reason
    assert _marts(warehouse) == yesterday
    rerun = cchc(*args)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert _marts(warehouse) != yesterday  # the night is published now
    _no_duplicates(warehouse)
    statuses = warehouse.query_df("select status from marts.pipeline_runs order by started_at")
    assert list(statuses.status)[0] == "published" and list(statuses.status)[-1] == "published"


# one statement, one snapshot: a mix of two nights' marts would show as a tuple no
# published night produced
BI_QUERY = """
select (select count(*) from marts.fct_dossier),
       (select coalesce(sum(received), 0) from marts.dossier_timeliness
         where period_grain = 'year'),
       (select count(*) from marts.dim_unit),
       (select max(run_id) from marts.data_quality_checks)
"""


def test_bi_queries_during_nightly_publishes_never_fail_or_see_half_a_night(
    cchc, district, tmp_path, pg_url
):
    import threading

    root, held = _copy(district, tmp_path)
    args = _args(root, pg_url, tmp_path / "reports")
    assert cchc(*args).returncode == 0
    published = {_read_state(pg_url)}
    seen: set[tuple] = set()
    errors: list[str] = []
    queries = [0]
    stop = threading.Event()

    def reader() -> None:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            while not stop.is_set():
                try:
                    seen.add(tuple(conn.execute(BI_QUERY).fetchone()))
                    queries[0] += 1
                except psycopg.Error as exc:
                    errors.append(str(exc))
                time.sleep(0.01)  # a dashboard's pace, not a busy loop stealing the run's CPU

    readers = [threading.Thread(target=reader) for _ in range(4)]
    for thread in readers:
        thread.start()
    try:
        _second_night(root, held)  # night 2: a new day
        assert cchc(*args).returncode == 0
        published.add(_read_state(pg_url))
    finally:
        stop.set()
        for thread in readers:
            thread.join(timeout=60)
    assert not errors, errors[:3]
    assert len(published) == 2 and queries[0] > 100
    assert seen <= published, seen - published
    assert len(seen) >= 2  # the readers did run across a publish


def _read_state(url: str) -> tuple:
    with psycopg.connect(url) as conn:
        return tuple(conn.execute(BI_QUERY).fetchone())
