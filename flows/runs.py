"""Running safely: one run at a time per warehouse, a row per run in marts.pipeline_runs,
and a message to a webhook when a night fails."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from flows.warehouse import DuckDBWarehouse, Warehouse

log = logging.getLogger(__name__)

RUNS_TABLE = "marts.pipeline_runs"
# One row per run, written when it starts and when it ends (BI and the report read it).
PIPELINE_RUNS = {
    "run_id": "varchar not null",
    "as_of": "date not null",
    "started_at": "timestamp not null",
    "finished_at": "timestamp",
    "status": "varchar not null",  # running | published | failed | interrupted
    "reason": "varchar",  # the one-line reason of a failure
    "rows_read": "bigint",
    "rows_loaded": "bigint",
    "rows_quarantined": "bigint",
    "sources_json": "varchar",  # per source: status, files, rows read / loaded / quarantined
    "steps_json": "varchar",  # seconds per step
}
DESCRIPTIONS = {
    "": "Lịch sử các lần chạy / Run history, one row per run",
    "run_id": "Mã lần chạy / Run id",
    "as_of": "Ngày đánh giá / Evaluation date",
    "started_at": "Bắt đầu / Started",
    "finished_at": "Kết thúc / Finished",
    "status": "running, published, failed, interrupted / Outcome",
    "reason": "Lý do thất bại / One-line reason of a failure",
    "rows_read": "Số dòng đã đọc / Rows read",
    "rows_loaded": "Số dòng đã nạp / Rows loaded",
    "rows_quarantined": "Số dòng bị cách ly / Rows quarantined",
    "sources_json": "Chi tiết từng nguồn (JSON) / Per source: status, files, rows (JSON)",
    "steps_json": "Thời gian từng bước, giây (JSON) / Seconds per step (JSON)",
}
PG_LOCK_KEY = 0x63636863  # "cchc": the advisory lock every run of a warehouse takes


class RunRefused(RuntimeError):
    """Another run holds the warehouse."""


def create_statements() -> list[str]:
    columns = ", ".join(f"{name} {kind}" for name, kind in PIPELINE_RUNS.items())
    return [
        "create schema if not exists marts",
        f"create table if not exists {RUNS_TABLE} ({columns})",
    ]


_HELD: dict[str, int] = {}  # warehouses this process holds: taking one again is a no-op
_HOLDER_FILES: dict[str, object] = {}  # DuckDB lock files held, to name the run inside


@contextmanager
def exclusive(warehouse: Warehouse, wait_seconds: float = 0.0):
    """Hold the warehouse for one run; a second run waits up to `wait_seconds`, then is
    refused with the holder's run id. The lock dies with its process, so a killed run
    never blocks the next night. Re-entrant within a process (the command takes it
    before it touches the warehouse, the flow again)."""
    key = warehouse.display()
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    with _exclusive(warehouse, wait_seconds):
        _HELD[key] = 1
        try:
            yield
        finally:
            del _HELD[key]


@contextmanager
def _exclusive(warehouse: Warehouse, wait_seconds: float):
    deadline = time.monotonic() + wait_seconds
    if isinstance(warehouse, DuckDBWarehouse):
        lock_path = warehouse.path.with_name(warehouse.path.name + ".lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path, "a+")  # noqa: SIM115
        try:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise RunRefused(_refusal(warehouse, lock_path)) from None
                    time.sleep(0.5)
            _HOLDER_FILES[warehouse.display()] = handle
            _name_holder(warehouse, f"pid {os.getpid()}")
            yield
        finally:
            _HOLDER_FILES.pop(warehouse.display(), None)
            handle.close()
        return
    conn = warehouse._open()  # a WarehouseError with the reason if unreachable
    conn.autocommit = True
    try:
        while not conn.execute("select pg_try_advisory_lock(%s)", [PG_LOCK_KEY]).fetchone()[0]:
            if time.monotonic() >= deadline:
                raise RunRefused(_refusal(warehouse))
            time.sleep(0.5)
        yield
    finally:
        conn.close()


def _name_holder(warehouse: Warehouse, who: str) -> None:
    """Write who holds a DuckDB warehouse into its lock file: a refused run reads it there,
    because opening the warehouse itself would take DuckDB's file lock from the holder."""
    handle = _HOLDER_FILES.get(warehouse.display())
    if handle is None:
        return
    handle.seek(0)
    handle.truncate()
    handle.write(f"{who}, started {datetime.now():%Y-%m-%d %H:%M:%S}\n")
    handle.flush()


def _refusal(warehouse: Warehouse, lock_path: Path | None = None) -> str:
    holder = ""
    try:
        if lock_path is not None:
            named = lock_path.read_text(encoding="utf-8").strip()
            holder = f" ({named})" if named else ""
        else:
            with warehouse.connect() as conn:
                rows = conn.fetchall(
                    f"select run_id, started_at from {RUNS_TABLE} where status = 'running' "
                    "order by started_at desc limit 1"
                )
            if rows:
                holder = f" (run {rows[0][0]}, started {rows[0][1]:%Y-%m-%d %H:%M:%S})"
    except Exception:  # the refusal stands without the holder's name
        pass
    return f"another cchc run is using {warehouse.display()}{holder}; not starting a second one"


def started(warehouse: Warehouse, run_id: str, as_of: str) -> None:
    """Record the run; rows left 'running' by a run that died are marked interrupted."""
    from flows.audit import comment_on

    with warehouse.transaction() as conn:
        for statement in create_statements():
            conn.execute(statement)
        if warehouse.kind == "postgres":
            comment_on(conn, RUNS_TABLE, DESCRIPTIONS)
        conn.execute(
            f"update {RUNS_TABLE} set status = 'interrupted', finished_at = %s "
            "where status = 'running'",
            [datetime.now()],
        )
        conn.execute(
            f"insert into {RUNS_TABLE} (run_id, as_of, started_at, status) "
            "values (%s, %s, %s, 'running')",
            [run_id, as_of, datetime.now()],
        )
    _name_holder(warehouse, f"run {run_id}")


def finished(
    warehouse: Warehouse,
    run_id: str,
    status: str,
    sources: list[dict],
    steps: dict[str, float],
    reason: str | None = None,
) -> None:
    per_source = {
        s["source_name"]: {
            k: s.get(k)
            for k in ("kind", "status", "files_loaded", "files_unchanged", "files_quarantined",
                      "rows_read", "rows_loaded", "rows_quarantined", "reason", "seconds")
            if k in s
        }
        for s in sources
    }  # fmt: skip
    totals = [sum(int(s.get(k) or 0) for s in sources) for k in ("rows_read", "rows_loaded",
                                                                 "rows_quarantined")]  # fmt: skip
    with warehouse.transaction() as conn:
        conn.execute(
            f"update {RUNS_TABLE} set finished_at = %s, status = %s, reason = %s, rows_read = %s, "
            "rows_loaded = %s, rows_quarantined = %s, sources_json = %s, steps_json = %s "
            "where run_id = %s",
            [datetime.now(), status, reason, *totals,
             json.dumps(per_source, ensure_ascii=False), json.dumps(steps), run_id],
        )  # fmt: skip


def notify_failure(url: str | None, payload: dict) -> bool:
    """POST the failure as JSON; a notifier that is down never hides the failure itself."""
    if not url:
        return False
    import httpx

    try:
        httpx.post(url, json=payload, timeout=10).raise_for_status()
        return True
    except httpx.HTTPError as exc:
        log.warning("failure notification to the webhook did not go through: %s", exc)
        return False
