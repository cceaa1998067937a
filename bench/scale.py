"""Benchmark: a province's history end to end, a night on top of it, and the floors.

    .venv/bin/python bench/scale.py [--dossiers 10000000] [--warehouse both|duckdb|postgres]
                                    [--slice-rows 1000000] [--json bench/results-….json]
                                    [--work DIR]

Generates, with the simulator, `--dossiers` dossiers received over several years at 200
units (the daily files of one province), holds back the latest files holding about 1% of
the rows (the night), and writes the same history as one CSV. Then, in one run on this
machine, for each warehouse:
- `cchc run` on the history into an empty warehouse, in a child process (peak memory is
  that process's, the warehouse server's not counted), timed step by step from its
  `marts.pipeline_runs` row: extract (read, hash, join the files), validate (land, type,
  check set-based), load (write the group's transaction), transform (dbt), audit,
  publish, report. Extract, validate and load run pipelined over groups of files: their
  seconds overlap and add up to more than the extraction's wall time;
- `cchc run` again with the night's files added (the nightly run);
- the physical floor of loading the same bytes: PostgreSQL `\\copy` of the one CSV into a
  text table, DuckDB's `read_csv` of it into a table;
and, once, the naive pandas pipeline (read_csv + to_sql into PostgreSQL + a pandas
group-by of on-time rates per unit and month) against `cchc run` (DuckDB) on a separate
history of about `--slice-rows` rows.

Prints a table per warehouse and the ratios of the issue (end to end / raw floor,
nightly / full history, naive / cchc); `--json` keeps every figure so two runs compare.
`--work DIR` keeps the generated inputs there and reuses them on the next run with the
same `--dossiers` (generating 10,000,000 dossiers takes minutes); warehouses still start
empty.
Not a test: it prints what it measured, nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flows.simulate_scale import generate_dossiers, hold_back_night  # noqa: E402

START, END = date(2021, 1, 1), date(2025, 6, 30)  # several years, ending before the merger
ROWS_PER_DOSSIER = 1.96  # change-log rows per dossier in the simulator's histories
# what each load sub-step of `SourceResult.seconds` belongs to
SUBSTEPS = {"assemble": "extract", "land": "validate", "refine": "validate",
            "export": "load", "write": "load"}  # fmt: skip


def _cchc(args: list[str], env: dict[str, str]) -> dict:
    """`cchc` in a child process: its wall time and peak resident memory (wait4)."""
    command = [str(Path(sys.executable).with_name("cchc")), *args]
    with tempfile.TemporaryFile("w+", encoding="utf-8") as stderr:
        started = time.perf_counter()
        child = subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                                 stderr=stderr)  # fmt: skip
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the others'
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            stderr.seek(0)
            raise SystemExit(f"cchc {args[0]} failed: {stderr.read().strip()[-2000:]}")
    return {"seconds": seconds, "peak_mb": usage.ru_maxrss / 1024}


def _run(sources: Path, url: str, as_of: str, reports: Path, env: dict) -> dict:
    outcome = _cchc(["run", "--sources", str(sources), "--warehouse", url, "--as-of", as_of,
                     "--report-dir", str(reports)], env)  # fmt: skip
    from flows.warehouse import Warehouse

    row = (
        Warehouse.from_url(url)
        .query_df(
            "select rows_read, steps_json, sources_json from marts.pipeline_runs "
            "order by started_at desc limit 1"
        )
        .iloc[0]
    )
    steps = json.loads(row.steps_json)
    outcome["rows_read"] = int(row.rows_read)
    outcome["steps"] = {k: v for k, v in steps.items() if not k.startswith("extract_load")}
    outcome["steps"]["extract_load"] = sum(v for k, v in steps.items()
                                           if k.startswith("extract_load"))  # fmt: skip
    inner: dict[str, float] = {}
    for source in json.loads(row.sources_json).values():
        for sub, seconds in (source.get("seconds") or {}).items():
            step = SUBSTEPS.get(sub, sub)
            inner[step] = inner.get(step, 0.0) + seconds
    outcome["extract_load_parts"] = inner
    return outcome


@contextlib.contextmanager
def _database(admin: str):
    name = f"cchc_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    try:
        yield f"{admin.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


def _floor(kind: str, single: Path, admin: str, work: Path) -> float:
    """The raw load of the same bytes: \\copy into text columns, or DuckDB's read_csv."""
    if kind == "duckdb":
        import duckdb

        with duckdb.connect(str(work / "floor.duckdb")) as con:
            con.execute("set enable_progress_bar = false")
            started = time.perf_counter()
            con.execute(f"create table floor as select * from read_csv('{single}', "
                        "all_varchar = true)")  # fmt: skip
            seconds = time.perf_counter() - started
        (work / "floor.duckdb").unlink()
        return seconds
    with open(single, encoding="utf-8") as stream:
        width = len(stream.readline().split(","))
    with _database(admin) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("create table floor (" + ", ".join(f"c{i} text" for i in range(width))
                         + ")")  # fmt: skip
        started = time.perf_counter()
        subprocess.run(["psql", url, "-q", "-c", f"\\copy floor from '{single}' "
                        "with (format csv, header true)"], check=True)  # fmt: skip
        return time.perf_counter() - started


def _naive(single: Path, admin: str) -> float:
    """The pipeline a spreadsheet-minded script writes: read it all, to_sql, group by."""
    import pandas as pd
    from sqlalchemy import create_engine

    with _database(admin) as url:
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        started = time.perf_counter()
        frame = pd.read_csv(single, dtype=str)
        frame.to_sql("dossiers", engine, index=False)  # the default call, as a script has it
        dates = {c: pd.to_datetime(frame[c], dayfirst=True, errors="coerce")
                 for c in ("Ngày tiếp nhận", "Ngày hẹn trả", "Ngày kết thúc xử lý")}  # fmt: skip
        frame = frame.assign(month=dates["Ngày tiếp nhận"].dt.strftime("%Y-%m"),
                             on_time=dates["Ngày kết thúc xử lý"] <= dates["Ngày hẹn trả"],
                             resolved=dates["Ngày kết thúc xử lý"].notna())  # fmt: skip
        latest = frame.groupby("Mã hồ sơ").tail(1)  # the file is in change order
        rates = latest[latest.resolved].groupby(["Mã đơn vị", "month"]).on_time.mean()
        rates.to_frame().to_sql("on_time_rates", engine, if_exists="replace")
        seconds = time.perf_counter() - started
        engine.dispose()
    return seconds


def _history(work: Path, name: str, dossiers: int) -> tuple[Path, Path, Path]:
    """(sources file of the daily files without the night, the night's folder, one CSV)."""
    done = work / f"{name}.generated"
    sources, night = work / name / "sources.yml", work / f"{name}_night"
    single = work / f"{name}_single" / "all.csv"
    if done.exists() and done.read_text() == str(dossiers):
        for path in night.rglob("*.csv"):  # a stopped run may have left the night in
            (sources.parent / path.relative_to(night)).unlink(missing_ok=True)
        print(f"reusing the {dossiers:,} dossiers generated in {work / name}", flush=True)
        return sources, night, single
    for stale in (work / name, night, single.parent):
        shutil.rmtree(stale, ignore_errors=True)
    done.unlink(missing_ok=True)
    sources = generate_dossiers(work / name, dossiers=dossiers, seed=11, start=START, end=END)
    single = generate_dossiers(work / f"{name}_single", dossiers=dossiers, seed=11,
                               start=START, end=END, single_file=True)  # fmt: skip
    night = work / f"{name}_night"
    hold_back_night(sources.parent, night, 0.01)
    done.write_text(str(dossiers))
    return sources, night, single


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dossiers", type=int, default=10_000_000)
    parser.add_argument("--warehouse", choices=["both", "duckdb", "postgres"], default="both")
    parser.add_argument("--slice-rows", type=int, default=1_000_000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--work", type=Path, default=None,
                        help="keep the generated inputs here and reuse them")  # fmt: skip
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="cchc-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    _clear_outputs(work)  # every warehouse starts empty
    kinds = ["duckdb", "postgres"] if args.warehouse == "both" else [args.warehouse]
    figures: dict = {"dossiers": args.dossiers, "warehouses": {}}
    from prefect.testing.utilities import prefect_test_harness

    try:
        print(f"generating {args.dossiers:,} dossiers, {START} .. {END}, into {work} ...",
              flush=True)  # fmt: skip
        sources, night, single = _history(work, "history", args.dossiers)
        as_of = END.isoformat()
        # one Prefect server for every run, as in production (not one started per run)
        with prefect_test_harness(server_startup_timeout=180):
            from prefect.settings import PREFECT_API_URL

            env = {"PREFECT_API_URL": PREFECT_API_URL.value()}
            for kind in kinds:
                print(f"{kind}: full history ...", flush=True)
                with contextlib.ExitStack() as stack:
                    url = (f"duckdb:///{work / 'warehouse.duckdb'}" if kind == "duckdb"
                           else stack.enter_context(_database(args.pg)))  # fmt: skip
                    full = _run(sources, url, as_of, work / f"reports_{kind}", env)
                    shutil.copytree(night, sources.parent, dirs_exist_ok=True)
                    print(f"{kind}: the night ...", flush=True)
                    nightly = _run(sources, url, as_of, work / f"reports_{kind}", env)
                    for path in night.rglob("*.csv"):  # the next warehouse starts without it
                        (sources.parent / path.relative_to(night)).unlink()
                    if kind == "duckdb":
                        (work / "warehouse.duckdb").unlink()
                print(f"{kind}: raw load floor ...", flush=True)
                floor = _floor(kind, single, args.pg, work)
                figures["warehouses"][kind] = {"full": full, "nightly": nightly,
                                               "raw_floor_seconds": floor}  # fmt: skip
                _print_warehouse(kind, figures)  # as each is measured: a long run may stop
                _save(figures, args.json)
            print(f"naive pandas against cchc on about {args.slice_rows:,} rows ...", flush=True)
            slice_sources, _, slice_single = _history(
                work, "slice", round(args.slice_rows / ROWS_PER_DOSSIER)
            )
            shutil.copytree(work / "slice_night", slice_sources.parent, dirs_exist_ok=True)
            cchc_slice = _run(slice_sources, f"duckdb:///{work / 'slice.duckdb'}", as_of,
                              work / "reports_slice", env)  # fmt: skip
            figures["slice"] = {"rows": cchc_slice["rows_read"], "cchc": cchc_slice,
                                "naive_seconds": _naive(slice_single, args.pg)}  # fmt: skip
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
        else:
            _clear_outputs(work)
    _print_slice(figures)
    _save(figures, args.json)


def _clear_outputs(work: Path) -> None:
    """The warehouses and reports of a run in `work`; its generated inputs stay."""
    for leftover in [*work.glob("*.duckdb*"), *work.glob("reports_*")]:
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink()


def _save(figures: dict, path: Path | None) -> None:
    if path:
        path.write_text(json.dumps(figures, indent=2), encoding="utf-8")


def _print_warehouse(kind: str, figures: dict) -> None:
    """One warehouse's table, printed as soon as it is measured."""
    f = figures["warehouses"][kind]
    full, nightly, floor = f["full"], f["nightly"], f["raw_floor_seconds"]
    rows = full["rows_read"]
    print(f"\n{kind}: {figures['dossiers']:,} dossiers, {rows:,} rows; "
          f"peak memory {full['peak_mb']:,.0f} MB (full), {nightly['peak_mb']:,.0f} MB "
          "(nightly)")  # fmt: skip
    print(f"  {'step':<34}{'full s':>9}{'rows/s':>12}{'nightly s':>11}")
    parts = [(f"  {p} (pipelined)", s) for p, s in full["extract_load_parts"].items()]
    lines = [(step, seconds) for step, seconds in full["steps"].items()]
    for step, seconds in [
        *lines[:1],
        *[(k, v) for k, v in lines if k == "extract_load"],
        *parts,
        *[(k, v) for k, v in lines[1:] if k != "extract_load"],
    ]:
        key = step.strip().split(" ")[0]
        night = nightly["steps"].get(key, nightly["extract_load_parts"].get(key))
        night_text = f"{night:>11.1f}" if night is not None else f"{'':>11}"
        print(f"  {step:<34}{seconds:>9.1f}{rows / seconds if seconds else 0:>12,.0f}"
              f"{night_text}")  # fmt: skip
    print(f"  {'end to end (wall)':<34}{full['seconds']:>9.1f}{rows / full['seconds']:>12,.0f}"
          f"{nightly['seconds']:>11.1f}")  # fmt: skip
    print(f"  {'raw load floor':<34}{floor:>9.1f}{rows / floor:>12,.0f}")
    print(
        f"  end to end / raw floor: {full['seconds'] / floor:.2f}x (target <= 3x); "
        f"nightly / full: {nightly['seconds'] / full['seconds']:.1%} (target <= 10%)"
    )


def _print_slice(figures: dict) -> None:
    s = figures.get("slice")
    if s:
        print(
            f"\nnaive pandas pipeline on {s['rows']:,} rows: {s['naive_seconds']:.1f} s; "
            f"cchc run (DuckDB): {s['cchc']['seconds']:.1f} s; "
            f"cchc is {s['naive_seconds'] / s['cchc']['seconds']:.1f}x faster (target >= 10x)"
        )


if __name__ == "__main__":
    main()
