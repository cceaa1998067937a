"""Benchmark: cchc's loader against the physical floor, on the same dossier rows.

    .venv/bin/python bench/load_2m.py [--dossiers 1000000] [--pg postgresql://...]

Generates about 2,000,000 dossier log rows with the simulator (daily files per unit,
and the same rows as one CSV), then times, on this machine, in this run:
- PostgreSQL `\\copy` of the single CSV into a table of text columns (the floor);
- cchc's loader (`flows.load.load_file_source`) into a fresh PostgreSQL database, in a
  child process whose peak memory is measured: whole (hash, land the text with COPY,
  type and validate set-based, write raw, quarantine and flags, commit) and its land
  step alone (`*_land_step`: files -> text rows in the warehouse);
- DuckDB `read_csv` of the single CSV, and cchc's loader into DuckDB;
- pandas `read_csv` + `DataFrame.to_sql` of a 50,000-row slice (rows/s).
Prints rows per second and the ratio of each to its floor; `--json` keeps the figures.
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
from flows.sources.dossier_files import COLUMNS  # noqa: E402

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
                  "land_seconds": result.seconds["land"],
                  "refine_seconds": result.seconds["refine"]}))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dossiers", type=int, default=1_000_000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--naive-rows", type=int, default=50_000, help="pandas to_sql slice")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="cchc-bench-"))
    figures: dict[str, dict] = {}

    print(f"generating {args.dossiers:,} dossiers into {work} ...", flush=True)
    daily = generate_dossiers(work / "daily", dossiers=args.dossiers, seed=11)
    single = generate_dossiers(work / "single", dossiers=args.dossiers, seed=11, single_file=True)
    with open(single, encoding="utf-8") as stream:
        rows = sum(1 for _ in stream) - 1
    print(f"{rows:,} rows, {single.stat().st_size / 1e6:,.0f} MB as one CSV", flush=True)

    # PostgreSQL: the floor, then cchc
    url = _database(args.pg)
    text_cols = ", ".join(f'"c{i}" text' for i in range(len(COLUMNS)))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"create table copy_floor ({text_cols})")
    seconds = _timed(
        lambda: subprocess.run(
            [
                "psql",
                url,
                "-q",
                "-c",
                f"\\copy copy_floor from '{single}' with (format csv, header true)",
            ],
            check=True,
        )  # fmt: skip
    )
    figures["pg_copy"] = {"rows": rows, "seconds": seconds}
    _drop(args.pg, url)
    url = _database(args.pg)
    loaded = _loader(url, daily)
    figures["pg_cchc"] = {"rows": loaded["rows_read"], **loaded}
    figures["pg_cchc_land_step"] = {"rows": loaded["rows_read"], "seconds": loaded["land_seconds"]}
    _drop(args.pg, url)

    # DuckDB: read_csv of the same bytes, then cchc
    import duckdb

    duck = work / "floor.duckdb"
    with duckdb.connect(str(duck)) as con:
        seconds = _timed(
            lambda: con.execute(
                f"create table floor as select * from read_csv('{single}', all_varchar=true)"
            )
        )
    figures["duckdb_read_csv"] = {"rows": rows, "seconds": seconds}
    loaded = _loader(f"duckdb:///{work / 'cchc.duckdb'}", daily)
    figures["duckdb_cchc"] = {"rows": loaded["rows_read"], **loaded}
    figures["duckdb_cchc_land_step"] = {
        "rows": loaded["rows_read"],
        "seconds": loaded["land_seconds"],
    }

    # pandas, naive: read_csv + to_sql of a slice
    import pandas as pd
    from sqlalchemy import create_engine

    url = _database(args.pg)
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    slice_rows = args.naive_rows

    def naive():
        frame = pd.read_csv(single, nrows=slice_rows)
        frame.to_sql("naive", engine, index=False, chunksize=2_000, method="multi")

    figures["pandas_to_sql"] = {"rows": slice_rows, "seconds": _timed(naive)}
    engine.dispose()
    _drop(args.pg, url)

    floors = {"pg": figures["pg_copy"], "duckdb": figures["duckdb_read_csv"]}
    print()
    print(f"{'method':<32}{'rows':>12}{'seconds':>10}{'rows/s':>12}{'vs floor':>10}{'peak MB':>9}")
    for name, f in figures.items():
        f["rows_per_second"] = f["rows"] / f["seconds"]
        floor = floors["duckdb" if name.startswith("duckdb") else "pg"]
        f["ratio_to_floor"] = f["rows_per_second"] / (floor["rows"] / floor["seconds"])
        peak = f"{f['peak_mb']:,.0f}" if "peak_mb" in f else ""
        print(
            f"{name:<32}{f['rows']:>12,}{f['seconds']:>10.1f}{f['rows_per_second']:>12,.0f}"
            f"{f['ratio_to_floor']:>9.0%}{peak:>9}"
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
