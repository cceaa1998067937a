"""The nightly refresh as a Prefect flow: extract -> validate -> load -> dbt -> audit ->
publish -> report.

Tasks pass names and paths, not data frames; the work lives in plain modules. The
warehouse URL is read from the environment (`CCHC_WAREHOUSE_URL`), never passed as a
flow parameter: Prefect stores parameters, and a PostgreSQL URL may hold a password.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from prefect import flow, get_run_logger, task

from flows import audit, failpoints, load, progress, publish, report, runs, transform
from flows.settings import Settings, default_as_of, load_sources_file
from flows.warehouse import DuckDBWarehouse, Warehouse

log = logging.getLogger(__name__)


# Every night at 01:30 local time, as of the day just closed (prefect.yaml says the same).
NIGHTLY_CRON = "30 1 * * *"
TIMEZONE = "Asia/Ho_Chi_Minh"


class PipelineError(RuntimeError):
    """A step failed; the marts BI reads were left as they were."""


@dataclass
class RunSummary:
    run_id: str
    as_of: str
    warehouse: str
    status: str = "running"
    reason: str | None = None
    sources: list[dict] = field(default_factory=list)
    published: dict[str, int] = field(default_factory=dict)
    checks: dict[str, int] = field(default_factory=dict)
    report_path: str | None = None
    step_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def failed_sources(self) -> list[str]:
        """Sources the run published without (policy `publish_others`)."""
        return [s["source_name"] for s in self.sources if s.get("status") == "failed"]


def _warehouse() -> Warehouse:
    url = Settings().warehouse_url
    if not url:
        raise PipelineError("no warehouse: set CCHC_WAREHOUSE_URL (or pass --warehouse)")
    return Warehouse.from_url(url)


def default_report_dir(warehouse: Warehouse) -> Path:
    configured = Settings().report_dir
    if configured:
        return configured
    if isinstance(warehouse, DuckDBWarehouse):
        return warehouse.path.parent / "reports"
    return Path.cwd() / "reports"


@task(retries=2, retry_delay_seconds=[5, 20])
def prepare_warehouse(units_file: str | None, run_id: str) -> int:
    warehouse = _warehouse()
    warehouse.prepare()
    load.load_reference_data(warehouse)
    return load.load_registered_units(warehouse, Path(units_file) if units_file else None, run_id)


def _worth_retrying(task, task_run, state) -> bool:
    """Run a failed source again, unless it failed with its own retries spent: the API
    client backs off by itself, and three more rounds of that only delay the night."""
    from flows.sources.dossier_api import ApiError

    return not isinstance(state.data, ApiError)


@task(retries=2, retry_delay_seconds=[5, 20], retry_condition_fn=_worth_retrying)
def extract_load_source(
    sources_file: str, source_name: str, run_id: str, files_until: str | None = None
) -> dict:
    source = next(s for s in load_sources_file(Path(sources_file)).sources if s.name == source_name)
    warehouse = _warehouse()
    if source.kind in load.FILE_KINDS:
        until = date.fromisoformat(files_until) if files_until else None
        return load.load_file_source(warehouse, source, run_id, until).as_dict()
    if source.kind == "dossier_api":
        from flows.sources import dossier_api

        return dossier_api.load_dossier_api(warehouse, source, run_id).as_dict()
    raise PipelineError(f"source {source.name}: unknown kind {source.kind}")


@task
def build_marts(as_of: str, run_id: str, full_refresh: bool = False) -> list[dict]:
    return transform.build(_warehouse(), as_of, run_id, full_refresh=full_refresh)


@task
def audit_marts(as_of: str, run_id: str, dbt_nodes: list[dict]) -> dict[str, int]:
    """Write the data-quality checks beside the built marts; raise if a mart is unfit."""
    return audit.audit(_warehouse(), as_of, run_id, dbt_nodes)


@task
def publish_marts() -> dict[str, int]:
    return publish.publish(_warehouse())


@task(retries=1, retry_delay_seconds=[2])
def write_report(as_of: str, run_id: str, report_dir: str, data_docs: bool = True) -> str:
    return str(report.write_report(_warehouse(), as_of, run_id, Path(report_dir), data_docs))


@flow(name="cchc-nightly", log_prints=True)
def nightly(
    sources_file: str,
    as_of: str | None = None,
    report_dir: str | None = None,
    run_id: str | None = None,
    full_refresh: bool = False,
    replay: bool = False,
    data_docs: bool = True,
) -> RunSummary:
    """One complete refresh. `as_of` defaults to yesterday (Asia/Ho_Chi_Minh); with
    `replay` (a backfill), files dated after `as_of` are left for their own night."""
    settings = Settings()
    warehouse = _warehouse()
    as_of = as_of or default_as_of().isoformat()
    run_id = run_id or load.new_run_id()
    report_dir = str(Path(report_dir or default_report_dir(warehouse)).resolve())
    summary = RunSummary(run_id, as_of, warehouse.display())
    with runs.exclusive(warehouse, settings.lock_wait_seconds):
        warehouse.prepare()
        runs.started(warehouse, run_id, as_of)
        try:
            until = as_of if replay else None
            _steps(summary, sources_file, report_dir, full_refresh, settings, until, data_docs)
        except Exception as exc:
            summary.status, summary.reason = "failed", _one_line(exc)
            _after_failure(warehouse, summary, report_dir, settings)
            raise PipelineError(summary.reason) from exc
        summary.status = "published"
        if summary.failed_sources:  # published by policy without them: still a night to look at
            summary.reason = "; ".join(f"source {s['source_name']} failed: {s['reason']}"
                                       for s in summary.sources
                                       if s.get("status") == "failed")[:500]  # fmt: skip
            runs.notify_failure(settings.webhook_url, {
                "event": "cchc.source_failed", "run_id": run_id, "as_of": as_of,
                "warehouse": summary.warehouse, "reason": summary.reason,
                "sources": summary.failed_sources,
            })  # fmt: skip
        runs.finished(warehouse, run_id, "published", summary.sources, summary.step_seconds,
                      summary.reason)  # fmt: skip
    return summary


def _steps(summary: RunSummary, sources_file: str, report_dir: str, full_refresh, settings,
           files_until: str | None, data_docs: bool = True):  # fmt: skip
    logger = get_run_logger()
    sources = load_sources_file(Path(sources_file))
    run_id, as_of = summary.run_id, summary.as_of

    def timed(step: str, fn, *args):
        started = time.perf_counter()
        try:
            with progress.step(step):
                result = fn(*args)
            failpoints.hit(f"after.{step}")  # between steps: no connection held
            return result
        finally:
            summary.step_seconds[step] = round(time.perf_counter() - started, 2)

    check_report_dir(Path(report_dir))  # before anything changes, not after publishing
    units = str(sources.units) if sources.units else None
    registered = timed("prepare", prepare_warehouse, units, run_id)
    logger.info("warehouse ready; %d registered units", registered)
    failed = []
    names = [source.name for source in sources.sources]
    started = time.perf_counter()
    if settings.dask_address:
        outcomes = _extract_on_dask(settings.dask_address, sources_file, names, run_id,
                                    files_until)  # fmt: skip
        summary.step_seconds["extract_load"] = round(time.perf_counter() - started, 2)
    else:
        outcomes = []
        for name in names:
            try:
                outcomes.append(timed(f"extract_load:{name}", extract_load_source,
                                      sources_file, name, run_id, files_until))  # fmt: skip
            except Exception as exc:
                outcomes.append(exc)
    for source, result in zip(sources.sources, outcomes, strict=True):
        if isinstance(result, BaseException):
            if settings.source_failure_policy != "publish_others":
                raise PipelineError(f"source {source.name} failed: {_one_line(result)}") from result
            # policy: the others are published; this one catches up next night
            result = {"source_name": source.name, "kind": source.kind, "status": "failed",
                      "reason": _one_line(result)}  # fmt: skip
            failed.append(source.name)
            logger.error("source %s failed, the others go on: %s", source.name, result["reason"])
        else:
            result["status"] = "loaded"
            logger.info(
                "source %s: %d files new or changed, %d unchanged; rows read %d, loaded %d, "
                "quarantined %d",
                source.name, result["files_loaded"] + result["files_quarantined"],
                result["files_unchanged"], result["rows_read"], result["rows_loaded"],
                result["rows_quarantined"],
            )  # fmt: skip
        summary.sources.append(result)
    if failed and len(failed) == len(sources.sources):
        raise PipelineError(f"every source failed: {', '.join(failed)}")
    nodes = timed("transform", build_marts, as_of, run_id, full_refresh)
    logger.info("dbt built %d nodes", len(nodes))
    summary.checks = timed("audit", audit_marts, as_of, run_id, nodes)
    summary.published = timed("publish", publish_marts)
    summary.report_path = timed("report", write_report, as_of, run_id, report_dir, data_docs)
    logger.info("published %d marts; report %s", len(summary.published), summary.report_path)


@flow(name="cchc-extract")
def extract_sources(sources_file: str, names: list[str], run_id: str, files_until: str | None):
    """Every source at once on the flow's task runner (Dask): a result or the error each."""
    futures = [extract_load_source.submit(sources_file, n, run_id, files_until) for n in names]
    outcomes = []
    for future in futures:
        try:
            outcomes.append(future.result())
        except Exception as exc:
            outcomes.append(exc)
    return outcomes


def _extract_on_dask(address: str, sources_file, names, run_id, files_until) -> list:
    """Extraction on a Dask cluster (`local`: one started for this run). PostgreSQL only:
    DuckDB has a single writer, so its sources load one after the other."""
    from prefect_dask import DaskTaskRunner

    if _warehouse().kind != "postgres":
        raise PipelineError(
            "extraction on Dask needs a PostgreSQL warehouse (DuckDB has one writer)"
        )
    runner = DaskTaskRunner() if address == "local" else DaskTaskRunner(address=address)
    return extract_sources.with_options(task_runner=runner)(sources_file, names, run_id,
                                                           files_until)  # fmt: skip


# The report and its Data Docs take a few MB at most; less room than this fails the run
# before it changes anything.
REPORT_ROOM = 4 << 20


def check_report_dir(folder: Path) -> None:
    """The night's report can be written: the folder exists (or can be made) and takes
    REPORT_ROOM bytes. Written, not just statted: as root, permissions say nothing."""
    probe = folder / ".cchc-write-check"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as handle:
            handle.write(b"\0" * REPORT_ROOM)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise PipelineError(
            f"the report folder {folder} cannot be written ({exc.strerror or exc}); "
            "nothing was loaded or published"
        ) from exc
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()


def _after_failure(warehouse: Warehouse, summary: RunSummary, report_dir: str, settings) -> None:
    """Record the failure, show it in the report, tell the webhook. None of this may hide
    the failure itself, so each part's own trouble is only logged."""
    try:
        runs.finished(warehouse, summary.run_id, "failed", summary.sources,
                      summary.step_seconds, summary.reason)  # fmt: skip
    except Exception as exc:
        log.error("could not record the failed run in %s: %s", runs.RUNS_TABLE, _one_line(exc))
    try:
        summary.report_path = str(
            report.write_report(warehouse, summary.as_of, summary.run_id, Path(report_dir))
        )
    except Exception as exc:
        log.error("could not write the report of the failed run: %s", _one_line(exc))
    runs.notify_failure(
        settings.webhook_url,
        {
            "event": "cchc.run_failed",
            "run_id": summary.run_id,
            "as_of": summary.as_of,
            "warehouse": summary.warehouse,
            "reason": summary.reason,
            "report": summary.report_path,
        },
    )


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:500] if text else type(exc).__name__


def published_days(warehouse: Warehouse) -> set[str]:
    """As-of days a run has published (a backfill skips them)."""
    if not warehouse.table_exists("marts", "pipeline_runs"):
        return set()
    with warehouse.connect() as conn:
        rows = conn.fetchall(
            f"select distinct as_of from {runs.RUNS_TABLE} where status = 'published'"
        )
    return {str(r[0])[:10] for r in rows}


def nightly_deployment(sources_file: str):
    """The scheduled deployment `cchc serve` holds. No as-of parameter: each run takes
    the day before it started. One run at a time."""
    from prefect.schedules import Cron

    return nightly.to_deployment(
        name="cchc-nightly",
        schedules=[Cron(NIGHTLY_CRON, timezone=TIMEZONE)],
        parameters={"sources_file": str(Path(sources_file).resolve())},
        concurrency_limit=1,
        description="Nightly refresh: extract, validate, load, transform, audit, publish, report",
    )
