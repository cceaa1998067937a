"""The nightly refresh as a Prefect flow: extract -> validate -> load -> dbt -> publish -> report.

Tasks pass names and paths, not data frames; the work lives in plain modules.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from prefect import flow, get_run_logger, task

from flows import load, publish, report, transform
from flows.settings import load_sources_file
from flows.warehouse import Warehouse


class PipelineError(RuntimeError):
    """A step failed; the marts BI reads were left as they were."""


@dataclass
class RunSummary:
    run_id: str
    as_of: str
    warehouse: str
    sources: list[dict] = field(default_factory=list)
    published: dict[str, int] = field(default_factory=dict)
    report_path: str | None = None
    step_seconds: dict[str, float] = field(default_factory=dict)


@task(retries=2, retry_delay_seconds=[5, 20])
def prepare_warehouse(warehouse_url: str, units_file: str | None, run_id: str) -> int:
    warehouse = Warehouse.from_url(warehouse_url)
    warehouse.prepare()
    load.load_reference_data(warehouse)
    return load.load_registered_units(warehouse, Path(units_file) if units_file else None, run_id)


@task(retries=2, retry_delay_seconds=[5, 20])
def extract_load_source(
    warehouse_url: str, sources_file: str, source_name: str, run_id: str
) -> dict:
    source = next(s for s in load_sources_file(Path(sources_file)).sources if s.name == source_name)
    warehouse = Warehouse.from_url(warehouse_url)
    if source.kind in load.FILE_KINDS:
        return load.load_file_source(warehouse, source, run_id).as_dict()
    if source.kind == "dossier_api":
        from flows.sources import dossier_api

        return dossier_api.load_dossier_api(warehouse, source, run_id).as_dict()
    raise PipelineError(f"source {source.name}: unknown kind {source.kind}")


@task
def build_marts(warehouse_url: str, as_of: str, run_id: str, full_refresh: bool = False) -> int:
    warehouse = Warehouse.from_url(warehouse_url)
    return len(transform.build(warehouse, as_of, run_id, full_refresh=full_refresh))


@task
def publish_marts(warehouse_url: str) -> dict[str, int]:
    return publish.publish(Warehouse.from_url(warehouse_url))


@task(retries=1, retry_delay_seconds=[2])
def write_report(warehouse_url: str, as_of: str, run_id: str, report_dir: str) -> str:
    path = report.write_report(Warehouse.from_url(warehouse_url), as_of, run_id, Path(report_dir))
    return str(path)


@flow(name="cchc-nightly", log_prints=True)
def nightly(
    sources_file: str,
    warehouse_url: str,
    as_of: str,
    report_dir: str,
    run_id: str,
    full_refresh: bool = False,
) -> RunSummary:
    logger = get_run_logger()
    sources = load_sources_file(Path(sources_file))
    summary = RunSummary(run_id, as_of, Warehouse.from_url(warehouse_url).display())

    def timed(step: str, fn, *args):
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            summary.step_seconds[step] = round(time.perf_counter() - started, 2)

    units = str(sources.units) if sources.units else None
    registered = timed("prepare", prepare_warehouse, warehouse_url, units, run_id)
    logger.info("warehouse ready; %d registered units", registered)
    for source in sources.sources:
        result = timed(
            f"extract_load:{source.name}",
            extract_load_source,
            warehouse_url,
            sources_file,
            source.name,
            run_id,
        )
        summary.sources.append(result)
        logger.info(
            "source %s: %d files new or changed, %d unchanged; rows read %d, loaded %d, "
            "quarantined %d",
            source.name,
            result["files_loaded"] + result["files_quarantined"],
            result["files_unchanged"],
            result["rows_read"],
            result["rows_loaded"],
            result["rows_quarantined"],
        )
    nodes = timed("transform", build_marts, warehouse_url, as_of, run_id, full_refresh)
    logger.info("dbt built %d nodes", nodes)
    summary.published = timed("publish", publish_marts, warehouse_url)
    summary.report_path = timed("report", write_report, warehouse_url, as_of, run_id, report_dir)
    logger.info("published %s; report %s", summary.published, summary.report_path)
    return summary
