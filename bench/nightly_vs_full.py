"""Benchmark: a nightly incremental build against a full rebuild of the same history.

    .venv/bin/python bench/nightly_vs_full.py [--dossiers 1000000] [--warehouse duckdb|postgres]

Generates a year of daily dossier files with the simulator and holds back the latest
files holding about 1% of the rows (the night). Then, in one run on this machine:
loads the history, builds every model (the first build is always full) and publishes
the marts, as the night before would; loads the night and builds incrementally, at the
same as-of date; builds the same data again with `--full-refresh`.
Prints each step's wall time and the ratio of the nightly build to the full rebuild.
Not a test: it prints what it measured, nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flows import load, publish, transform  # noqa: E402
from flows.pipeline import prepare_warehouse  # noqa: E402
from flows.settings import load_sources_file  # noqa: E402
from flows.simulate_scale import generate_dossiers, hold_back_night  # noqa: E402
from flows.warehouse import Warehouse  # noqa: E402

AS_OF = "2025-01-31"


def _node_seconds(nodes: list[dict]) -> dict[str, float]:
    """Each dbt node's execution time in one build."""
    return {n["node"]: round(n["seconds"], 2) for n in nodes}


def _print_slowest(nodes: dict[str, dict[str, float]], count: int = 12) -> None:
    """Where the nightly build's time goes, beside the same node in the full rebuild."""
    night, full = nodes["night"], nodes["full"]
    print(f"\n  slowest nodes of the nightly build (night s / full s), "
          f"all nodes {sum(night.values()):.1f} / {sum(full.values()):.1f} s")  # fmt: skip
    for node in sorted(night, key=night.get, reverse=True)[:count]:
        print(f"    {node.split('.', 2)[-1]:<60}{night[node]:>7.1f} {full.get(node, 0):>7.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dossiers", type=int, default=1_000_000)
    parser.add_argument("--warehouse", choices=["duckdb", "postgres"], default="duckdb")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cchc-nightly-"))
    print(f"generating {args.dossiers:,} dossiers into {work} ...", flush=True)
    sources_file = generate_dossiers(work / "history", dossiers=args.dossiers, seed=11)
    night_bytes = hold_back_night(sources_file.parent, work / "night", 0.01)
    print(f"night: {night_bytes / 1e6:,.1f} MB held back", flush=True)

    if args.warehouse == "duckdb":
        url = f"duckdb:///{work / 'warehouse.duckdb'}"
    else:
        name = f"cchc_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'create database "{name}"')
        url = f"{args.pg.rsplit('/', 1)[0]}/{name}"
    warehouse = Warehouse.from_url(url)
    sources = load_sources_file(sources_file)
    units = str(sources.units) if sources.units else None
    figures: dict[str, float] = {}

    def step(label: str, fn, *a, **kw):
        started = time.perf_counter()
        out = fn(*a, **kw)
        figures[label] = time.perf_counter() - started
        print(f"  {label:<28}{figures[label]:>9.1f} s", flush=True)
        return out

    try:
        os.environ["CCHC_WAREHOUSE_URL"] = url  # the pipeline's tasks read it there
        prepare_warehouse.fn(units, "bench")
        history = 0
        for source in sources.sources:
            history += step("history_load", load.load_file_source, warehouse, source, "h").rows_read
        step("history_build_full", transform.build, warehouse, AS_OF, "h")
        # a night follows a published one: publish empties the marts' ledgers of keys
        step("history_publish", publish.publish, warehouse, transform.MARTS)
        shutil.copytree(work / "night", sources_file.parent, dirs_exist_ok=True)
        night = 0
        for source in sources.sources:
            night += step("night_load", load.load_file_source, warehouse, source, "n").rows_read
        built = {
            "night": step("night_build_incremental", transform.build, warehouse, AS_OF, "n"),
            "full": step("same_data_build_full", transform.build, warehouse, AS_OF, "f",
                         full_refresh=True),
        }  # fmt: skip
        nodes = {label: _node_seconds(result) for label, result in built.items()}
        _print_slowest(nodes)
    finally:
        if args.warehouse == "postgres":
            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f'drop database if exists "{name}" with (force)')
        shutil.rmtree(work, ignore_errors=True)

    ratio = figures["night_build_incremental"] / figures["same_data_build_full"]
    night_total = figures["night_load"] + figures["night_build_incremental"]
    full_total = figures["history_load"] + figures["history_build_full"]
    print()
    print(f"{args.warehouse}: history {history:,} rows, night {night:,} rows "
          f"({night / (history + night):.1%})")  # fmt: skip
    print(f"nightly build / full rebuild of the same data: {ratio:.1%}")
    print(f"nightly load + build / history load + build: {night_total / full_total:.1%}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "warehouse": args.warehouse,
                    "history_rows": history,
                    "night_rows": night,
                    "seconds": figures,
                    "nightly_to_full_build": ratio,
                    "node_seconds": nodes,
                },
                indent=2,
            )  # fmt: skip
        )


if __name__ == "__main__":
    main()
