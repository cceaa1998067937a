"""Benchmark: cchc's loader against the physical floor, on the same dossier rows.

    .venv/bin/python bench/load_2m.py [--dossiers 2000000] [--pg postgresql://...]

Generates dossiers with the simulator in two layouts, each also written as one CSV of
the same rows for the floors: "history", a full-history export of each dossier's latest
row, one file per unit (`--dossiers` rows), and "daily", the nightly layout of the
change log (a file per unit and day, a dossier in every file its status moved in: tens
of thousands of small files, about twice the rows). Then times, per layout, on this
machine, in this run:
- PostgreSQL `\\copy` of the one CSV into a table of text columns, and into a table typed
  as the contract's columns (dates parsed, DMY): the floors;
- cchc's loader (`flows.load.load_file_source`) into a fresh PostgreSQL database, in a
  child process whose peak memory is measured, on the history files and on the daily
  files: whole (read and hash each file, land it in DuckDB, type and validate it
  set-based, write raw rows, quarantine and flags with COPY, commit);
- DuckDB `read_csv` of the one CSV into a table (its floor), and cchc's loader into DuckDB;
- pandas `read_csv` + `DataFrame.to_sql` of a 20,000-row slice of the history (rows/s).
Prints rows per second and the ratio of each to its floors; `--json` keeps the figures.
Not a test: it prints what it measured, nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flows.simulate_scale import generate_dossiers  # noqa: E402
from flows.sources.dossier_files import COLUMNS, TYPES  # noqa: E402

CHILD = """
import json, resource, sys, time
from flows import load
from flows.settings import load_sources_file
from flows.warehouse import Warehouse
url, sources = sys.argv[1], sys.argv[2]
warehouse = Warehouse.from_url(url)
warehouse.prepare()
source = load_sources_file(sources).sources[0]
started = time.perf_counter()
result = load.load_file_source(warehouse, source, "bench")
seconds = time.perf_counter() - started
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "rows_read": result.rows_read,
                  "rows_loaded": result.rows_loaded, "peak_mb": peak_mb,
                  "steps": result.seconds}))
"""


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _database(admin: str) -> str:
    name = f"cchc_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    return f"{admin.rsplit('/', 1)[0]}/{name}"


def _drop(admin: str, url: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{url.rsplit("/", 1)[1]}" with (force)')


def _loader(url: str, sources: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, url, str(sources)],
        capture_output=True, text=True, check=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def _latest_rows(log: Path, out: Path) -> Path:
    """Each dossier's last row of the change log: a full-history export, one row per
    dossier (a file is one day's export, so a dossier appears in it once)."""
    latest: dict[tuple[bytes, bytes], bytes] = {}
    with open(log, "rb") as stream:
        header = stream.readline()
        for line in stream:
            code, unit, _ = line.split(b",", 2)
            latest[unit, code] = line
    with open(out, "wb") as target:
        target.write(header)
        target.writelines(latest.values())
    return out


def _split_by_unit(single: Path, out: Path) -> Path:
    """The one CSV as one history file per unit (<unit>/<last day>.csv), same rows."""
    files: dict[bytes, object] = {}
    root = out / "dossiers"
    with open(single, "rb") as stream:
        header = stream.readline()
        for line in stream:
            unit = line.split(b",", 2)[1]
            target = files.get(unit)
            if target is None:
                (root / unit.decode()).mkdir(parents=True, exist_ok=True)
                target = files[unit] = open(root / unit.decode() / "2024-12-31.csv", "wb")  # noqa: SIM115
                target.write(header)
            target.write(line)
    for target in files.values():
        target.close()
    sources = out / "sources.yml"
    sources.write_text(
        "sources:\n  - name: dossiers\n    kind: dossier_files\n    path: dossiers\n"
    )
    return sources


SQL_TYPES = {"text": "varchar", "unit": "varchar", "datetime": "timestamp",
             "integer": "integer", "amount": "varchar"}  # fmt: skip


def _pg_floor(admin: str, single: Path, columns: str, datestyle: bool) -> float:
    url = _database(admin)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"create table copy_floor ({columns})")
    command = ["psql", url, "-q"]
    if datestyle:
        command += ["-c", "set datestyle = 'ISO, DMY'"]
    command += ["-c", f"\\copy copy_floor from '{single}' with (format csv, header true)"]
    seconds = _timed(lambda: subprocess.run(command, check=True))
    _drop(admin, url)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dossiers", type=int, default=2_000_000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--naive-rows", type=int, default=20_000, help="pandas to_sql slice")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="cchc-bench-"))
    figures: dict[str, dict] = {}

    print(f"generating {args.dossiers:,} dossiers into {work} ...", flush=True)
    daily = generate_dossiers(work / "daily", dossiers=args.dossiers, seed=11)
    log = generate_dossiers(work / "single", dossiers=args.dossiers, seed=11, single_file=True)
    latest = _latest_rows(log, work / "latest.csv")
    layouts = {  # layout -> (its sources file, the same rows as one CSV for the floors)
        "history": (_split_by_unit(latest, work / "history"), latest),
        "daily": (daily, log),
    }
    for layout, (_, single) in layouts.items():
        with open(single, encoding="utf-8") as stream:
            rows = sum(1 for _ in stream) - 1
        print(f"{layout}: {rows:,} rows, {single.stat().st_size / 1e6:,.0f} MB as one CSV",
              flush=True)  # fmt: skip
    print(f"daily: {sum(1 for _ in (daily.parent / 'dossiers').rglob('*.csv')):,} files")

    text_columns = ", ".join(f'"c{i}" text' for i in range(len(COLUMNS)))
    typed_columns = ", ".join(f"{name} {SQL_TYPES[TYPES[name]]}" for name in COLUMNS.values())
    import duckdb

    for layout, (sources, single) in layouts.items():
        with open(single, encoding="utf-8") as stream:
            rows = sum(1 for _ in stream) - 1
        floors = figures[layout] = {}
        floors["pg_copy_text"] = {
            "rows": rows, "seconds": _pg_floor(args.pg, single, text_columns, datestyle=False)
        }  # fmt: skip
        floors["pg_copy_typed"] = {
            "rows": rows, "seconds": _pg_floor(args.pg, single, typed_columns, datestyle=True)
        }  # fmt: skip
        url = _database(args.pg)
        loaded = _loader(url, sources)
        floors["pg_cchc"] = {"rows": loaded["rows_read"], **loaded}
        _drop(args.pg, url)
        floor_db = work / f"floor_{layout}.duckdb"
        with duckdb.connect(str(floor_db)) as con:
            con.execute("set enable_progress_bar = false")
            query = f"create table floor as select * from read_csv('{single}', all_varchar=true)"
            seconds = _timed(lambda: con.execute(query))  # noqa: B023 (called at once)
        floor_db.unlink()
        floors["duckdb_read_csv"] = {"rows": rows, "seconds": seconds}
        loaded = _loader(f"duckdb:///{work / f'cchc_{layout}.duckdb'}", sources)
        floors["duckdb_cchc"] = {"rows": loaded["rows_read"], **loaded}

    # pandas, naive: read_csv + to_sql of a slice
    import pandas as pd
    from sqlalchemy import create_engine

    url = _database(args.pg)
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    slice_rows = args.naive_rows

    def naive():
        frame = pd.read_csv(latest, nrows=slice_rows)
        frame.to_sql("naive", engine, index=False, chunksize=2_000, method="multi")

    figures["history"]["pandas_to_sql"] = {"rows": slice_rows, "seconds": _timed(naive)}
    engine.dispose()
    _drop(args.pg, url)

    print()
    print(f"{'layout':<9}{'method':<17}{'rows':>11}{'seconds':>9}{'rows/s':>10}"
          f"{'/ text':>8}{'/ typed':>8}{'/ duckdb':>9}{'peak MB':>9}")  # fmt: skip
    for layout, floors in figures.items():
        rate = {name: f["rows"] / f["seconds"] for name, f in floors.items()}
        for name, f in floors.items():
            f["rows_per_second"] = rate[name]
            f["vs_pg_copy_text"] = rate[name] / rate["pg_copy_text"]
            f["vs_pg_copy_typed"] = rate[name] / rate["pg_copy_typed"]
            f["vs_duckdb_read_csv"] = rate[name] / rate["duckdb_read_csv"]
            peak = f"{f['peak_mb']:,.0f}" if "peak_mb" in f else ""
            print(
                f"{layout:<9}{name:<17}{f['rows']:>11,}{f['seconds']:>9.1f}{rate[name]:>10,.0f}"
                f"{f['vs_pg_copy_text']:>8.0%}{f['vs_pg_copy_typed']:>8.0%}"
                f"{f['vs_duckdb_read_csv']:>9.0%}{peak:>9}"
            )
    for layout, floors in figures.items():
        for name, f in floors.items():
            if "steps" in f:
                steps = ", ".join(f"{k} {v:.1f}" for k, v in f["steps"].items())
                print(f"{layout} {name}: seconds per step, summed over groups that overlap: "
                      f"{steps}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
