"""dbt: build the models of `dbt_project/` against the warehouse."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from flows.warehouse import Warehouse

DBT_PROJECT = Path(__file__).resolve().parents[1] / "dbt_project"

# Marts dbt builds in the staging schema; publish copies them into `marts`.
BUILD_SCHEMA = "cchc_build"
MARTS = [
    "dim_unit",
    "fct_dossier",
    "dossier_timeliness",
    "dossier_due_date_audit",
    "task_overdue_by_department",
    "digitization",
    "service_index_766",
    "apology_letters",
    "apology_letters_by_unit",
]


class TransformError(RuntimeError):
    """dbt did not build every model and test."""


@contextmanager
def environment(values: dict[str, str]):
    """Environment variables set for the block, restored after (dbt reads them at invoke)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def run_dbt(
    warehouse: Warehouse,
    args: list[str],
    variables: dict[str, str],
    work_dir: Path | None = None,
) -> list[dict]:
    """Run one dbt command; return its node results, raise TransformError if any failed."""
    from dbt.cli.main import dbtRunner

    work = Path(work_dir or tempfile.mkdtemp(prefix="cchc-dbt-"))
    command = [
        *args,
        "--project-dir", str(DBT_PROJECT),
        "--profiles-dir", str(DBT_PROJECT),
        "--target", warehouse.dbt_target,
        "--target-path", str(work / "target"),
        "--log-path", str(work / "logs"),
        "--vars", json.dumps(variables),
        "--no-use-colors",
        "--quiet",
    ]  # fmt: skip
    with environment({**warehouse.dbt_env(), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}):
        outcome = dbtRunner().invoke(command)
    nodes = []
    for r in getattr(outcome.result, "results", None) or []:
        nodes.append(
            {
                "node": r.node.unique_id,
                "status": str(r.status),
                "message": r.message,
                "failures": getattr(r, "failures", None),
            }
        )
    if not outcome.success:
        failed = [n for n in nodes if n["status"] not in ("success", "pass", "skipped")]
        if failed:
            first = failed[0]
            detail = f"{first['node']}: {first['status']}"
            if first["message"]:
                detail += f" ({str(first['message']).splitlines()[0][:200]})"
            reason = f"{len(failed)} dbt node(s) failed, first {detail}"
        else:
            reason = str(outcome.exception or "dbt failed").splitlines()[0][:300]
        raise TransformError(f"dbt {args[0]} failed: {reason} [logs: {work / 'logs'}]")
    return nodes


def build(
    warehouse: Warehouse, as_of: str, run_id: str, work_dir: Path | None = None
) -> list[dict]:
    """Seeds, models and data tests; unit tests check code, so the test suite runs them."""
    return run_dbt(
        warehouse,
        ["build", "--exclude-resource-type", "unit_test"],
        {"as_of": as_of, "run_id": run_id},
        work_dir,
    )
