"""The `cchc` command."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

import flows  # noqa: F401  (telemetry off before anything else loads)
from flows import simulate, simulate_api
from flows.settings import SourcesFileError, default_as_of, load_sources_file
from flows.warehouse import Warehouse, WarehouseError

app = typer.Typer(help="cchc: administrative-procedure performance warehouse", no_args_is_help=True)
simulate.app.command("serve-api")(simulate_api.serve_api_command)
app.add_typer(simulate.app, name="simulate")
console = Console()
DEMO_AS_OF = date(2025, 6, 30)  # the sample district ends on the last day before the merger


def _fail(reason: str, code: int = 1):
    # One line, as CONTRACTS §3 promises.
    # Plain write: a console would wrap a long reason onto several lines.
    sys.stderr.write(f"cchc: {' '.join(str(reason).split())}\n")
    raise typer.Exit(code)


def run_pipeline(
    sources: Path,
    warehouse_url: str,
    as_of: date,
    report_dir: Path | None,
    quiet: bool = False,
    full_refresh: bool = False,
    replay: bool = False,
    data_docs: bool = True,
):
    """Run the nightly flow; return its summary or raise with a one-line reason."""
    from flows.runs import exclusive
    from flows.settings import Settings

    load_sources_file(sources)  # a bad sources file fails before anything starts
    warehouse = Warehouse.from_url(warehouse_url)
    # the run's lock first: DuckDB lets one process open the file, so even a ping waits
    with exclusive(warehouse, Settings().lock_wait_seconds):
        warehouse.ping()
        return _run_flow(
            sources, warehouse_url, as_of, report_dir, quiet, full_refresh, replay, data_docs
        )


def _run_flow(sources, warehouse_url, as_of, report_dir, quiet, full_refresh, replay, data_docs):
    from flows.pipeline import nightly

    # The flow reads the URL from the environment: a flow parameter would be stored by
    # Prefect, password included.
    os.environ["CCHC_WAREHOUSE_URL"] = warehouse_url
    _configure_logging(quiet)
    return nightly(
        sources_file=str(Path(sources).resolve()),
        as_of=as_of.isoformat(),
        report_dir=str(Path(report_dir).resolve()) if report_dir else None,
        full_refresh=full_refresh,
        replay=replay,
        data_docs=data_docs,
    )


def _configure_logging(quiet: bool = False) -> None:
    import prefect  # noqa: F401  (Prefect sets its logging up on import; ours goes after)

    from flows import logs
    from flows.settings import Settings

    logs.configure(Settings().log_format)
    if quiet:
        logging.getLogger("prefect").setLevel(logging.WARNING)


def _parse_date(value: str | None) -> date:
    if value is None:
        return default_as_of()
    try:
        return date.fromisoformat(value)
    except ValueError:
        _fail(f"--as-of must be a date YYYY-MM-DD, got {value!r}", 2)


@app.command()
def run(
    sources: Annotated[
        Path | None, typer.Option(help="Sources file (YAML)", envvar="CCHC_SOURCES")
    ] = None,
    warehouse: Annotated[
        str | None,
        typer.Option(help="duckdb:///file.duckdb or postgresql://…", envvar="CCHC_WAREHOUSE_URL"),
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Evaluation date (default: yesterday)")
    ] = None,
    report_dir: Annotated[
        Path | None, typer.Option(help="Where to write the report", envvar="CCHC_REPORT_DIR")
    ] = None,
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="Rebuild every model whole, not incrementally")
    ] = False,
):
    """One complete refresh: extract, validate, load, transform, publish, report."""
    if sources is None:
        _fail("no sources file: pass --sources FILE or set CCHC_SOURCES", 2)
    if warehouse is None:
        _fail("no warehouse: pass --warehouse URL or set CCHC_WAREHOUSE_URL", 2)
    day = _parse_date(as_of)
    from flows.pipeline import PipelineError
    from flows.runs import RunRefused

    try:
        with _bars_for_steps(_progress()):
            summary = run_pipeline(sources, warehouse, day, report_dir, full_refresh=full_refresh)
    except (SourcesFileError, WarehouseError) as exc:
        _fail(str(exc))
    except RunRefused as exc:
        _fail(str(exc), 3)
    except PipelineError as exc:
        _fail(f"run failed: {exc}")
    except Exception as exc:  # the flow's own failure: report its first line, exit non-zero
        _fail(f"run failed: {_first_line(exc)}")
    _print_summary(summary)
    if summary.failed_sources:  # published, so exit 0 (CONTRACTS §3); the webhook knows
        reason, names = " ".join(summary.reason.split()), ", ".join(summary.failed_sources)
        sys.stderr.write(f"cchc: warning: published without {names}, which "
                         f"catches up next night: {reason}\n")  # fmt: skip


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def _print_summary(summary) -> None:
    table = Table(title=f"cchc run {summary.run_id} (as of {summary.as_of})")
    for col in ("source", "files new", "unchanged", "rows read", "loaded", "quarantined"):
        table.add_column(col, justify="right" if col != "source" else "left")
    for s in summary.sources:
        if s.get("status") == "failed":
            table.add_row(
                s["source_name"], f"[red]failed: {s.get('reason', '')}[/]", "", "", "", ""
            )
            continue
        table.add_row(
            s["source_name"],
            str(s["files_loaded"] + s["files_quarantined"]),
            str(s["files_unchanged"]),
            str(s["rows_read"]),
            str(s["rows_loaded"]),
            str(s["rows_quarantined"]),
        )
    console.print(table)
    steps = ", ".join(f"{k} {v:.1f} s" for k, v in summary.step_seconds.items())
    console.print(f"steps: {steps}")
    console.print(f"published: {len(summary.published)} marts, "
                  f"{sum(summary.published.values()):,} rows")  # fmt: skip
    checks = ", ".join(f"{k} {v}" for k, v in sorted(summary.checks.items()))
    console.print(f"data-quality checks: {checks}")
    console.print(f"report: {summary.report_path}")


@app.command()
def backfill(
    start: Annotated[str, typer.Option("--start", help="First as-of day, YYYY-MM-DD")],
    end: Annotated[str, typer.Option("--end", help="Last as-of day, YYYY-MM-DD")],
    sources: Annotated[
        Path | None, typer.Option(help="Sources file (YAML)", envvar="CCHC_SOURCES")
    ] = None,
    warehouse: Annotated[
        str | None,
        typer.Option(help="duckdb:///file.duckdb or postgresql://…", envvar="CCHC_WAREHOUSE_URL"),
    ] = None,
    report_dir: Annotated[
        Path | None, typer.Option(help="Where to write the reports", envvar="CCHC_REPORT_DIR")
    ] = None,
):
    """Run the nightly pipeline for each as-of day from START to END, in order, each night
    seeing only the files dated up to it. Days already published are skipped, so after a
    failure the same command resumes from the failed day."""
    from flows.pipeline import published_days
    from flows.runs import RunRefused, exclusive
    from flows.settings import Settings

    if sources is None:
        _fail("no sources file: pass --sources FILE or set CCHC_SOURCES", 2)
    if warehouse is None:
        _fail("no warehouse: pass --warehouse URL or set CCHC_WAREHOUSE_URL", 2)
    first, last = _parse_date(start), _parse_date(end)
    if last < first:
        _fail(f"--end {last} is before --start {first}", 2)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    wh = Warehouse.from_url(warehouse)
    try:
        with exclusive(wh, Settings().lock_wait_seconds):  # held for the whole backfill
            wh.ping()
            wh.prepare()
            done = published_days(wh)
            _backfill_days(days, done, sources, warehouse, report_dir)
    except (WarehouseError, RunRefused) as exc:
        _fail(str(exc), 3 if isinstance(exc, RunRefused) else 1)
    console.print(f"backfill {first} .. {last}: every day published")


def _backfill_days(days, done, sources, warehouse, report_dir) -> None:
    from flows.pipeline import PipelineError
    from flows.runs import RunRefused

    first, last = days[0], days[-1]
    todo = [d for d in days if d.isoformat() not in done]
    console.print(f"backfill {first} .. {last}: {len(days)} days, {len(days) - len(todo)} "
                  f"already published, {len(todo)} to run")  # fmt: skip
    progress = _progress()
    with _bars_for_steps(progress, keep=False):  # the day's steps come and go under it
        bar = progress.add_task("backfill", total=len(todo), unit="days")
        for day in todo:
            progress.update(bar, description=f"as of {day}")
            try:
                run_pipeline(sources, warehouse, day, report_dir, quiet=True, replay=True,
                             data_docs=day == last)  # fmt: skip
            except (SourcesFileError, WarehouseError, RunRefused, PipelineError) as exc:
                progress.stop()
                _fail(f"backfill stopped at {day}: {exc}; run the same command again to "
                      f"resume from {day}")  # fmt: skip
            progress.advance(bar)


@app.command()
def serve(
    sources: Annotated[
        Path | None, typer.Option(help="Sources file (YAML)", envvar="CCHC_SOURCES")
    ] = None,
    warehouse: Annotated[
        str | None,
        typer.Option(help="duckdb:///file.duckdb or postgresql://…", envvar="CCHC_WAREHOUSE_URL"),
    ] = None,
):
    """Hold the nightly schedule (01:30 Asia/Ho_Chi_Minh, as of the day before) and run
    each night's pipeline; needs a Prefect server (PREFECT_API_URL)."""
    from prefect import serve as prefect_serve

    from flows.pipeline import nightly_deployment

    if sources is None:
        _fail("no sources file: pass --sources FILE or set CCHC_SOURCES", 2)
    if warehouse is None:
        _fail("no warehouse: pass --warehouse URL or set CCHC_WAREHOUSE_URL", 2)
    load_sources_file(sources)
    Warehouse.from_url(warehouse).ping()
    os.environ["CCHC_WAREHOUSE_URL"] = warehouse  # runs read it; never a flow parameter
    prefect_serve(nightly_deployment(str(sources)))


def _progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    return Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        "{task.fields[unit]}", TimeElapsedColumn(), console=console, transient=False,
        disable=not console.is_terminal,
    )  # fmt: skip


STEP_LABELS = {
    "prepare": "prepare warehouse",
    "transform": "build marts (dbt)",
    "audit": "audit marts",
    "publish": "publish marts",
    "report": "write report",
}


class _StepBars:
    """One bar per step of a run (files loaded, dbt nodes built, marts published), fed by
    `flows.progress`. With `keep`, finished steps stay on screen with their times."""

    def __init__(self, bars, keep: bool = True):
        self.bars, self.keep, self.ids = bars, keep, {}

    def begin(self, step: str, total: int | None) -> None:
        source = step.partition("extract_load:")[2]
        label = f"load {source}" if source else STEP_LABELS.get(step, step)
        self.ids[step] = self.bars.add_task(label, total=total, unit="")

    def total(self, step: str, total: int | None, unit: str) -> None:
        self.bars.update(self.ids[step], total=total, unit=unit)

    def advance(self, step: str, amount: int) -> None:
        self.bars.advance(self.ids[step], amount)

    def end(self, step: str, ok: bool) -> None:
        task_id = self.ids.pop(step)
        if not self.keep:
            self.bars.remove_task(task_id)
            return
        task = next(t for t in self.bars.tasks if t.id == task_id)
        if not ok:
            self.bars.update(task_id, description=f"[red]{task.description}: failed[/]")
        elif task.total is None:  # no units known in advance: the count seen, or one step
            done = task.completed or 1
            self.bars.update(task_id, total=done, completed=done)
        self.bars.stop_task(task_id)


@contextlib.contextmanager
def _bars_for_steps(bars, keep: bool = True):
    """Steps shown as bars while the block runs, log lines printed above them (handlers
    writing to the terminal go through the bars' console; a log file stays a log file)."""
    from flows import progress

    if bars.disable:
        yield
        return
    _configure_logging()  # the handlers exist before the bars take the terminal
    swapped = []
    with bars:
        for handler in _terminal_log_handlers():
            swapped.append((handler, handler.stream))
            handler.setStream(sys.stderr)  # rich's proxy, while the bars are live
            if hasattr(handler, "console"):  # Prefect's handler prints through its own
                swapped.append((handler.console, handler.console.file))
                handler.console.file = sys.stderr
        try:
            with progress.shown_by(_StepBars(bars, keep)):
                yield
        finally:
            for owner, stream in reversed(swapped):
                if isinstance(owner, logging.Handler):
                    owner.setStream(stream)
                else:
                    owner.file = stream


def _terminal_log_handlers() -> list[logging.StreamHandler]:
    loggers = [logging.getLogger(), *(
        logger for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    )]  # fmt: skip
    found = []
    for logger in loggers:
        for handler in logger.handlers:
            stream = getattr(handler, "stream", None)
            if (isinstance(handler, logging.StreamHandler) and handler not in found
                    and stream is not None and stream.isatty()):  # fmt: skip
                found.append(handler)
    return found


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the sample district")] = Path("demo"),
    seed: int = 2025,
):
    """Generate the sample district (An Lão, Hải Phòng) and run the pipeline on DuckDB."""
    out = out.resolve()
    console.print(f"[bold]1/2[/] generating the sample district into {out}")
    sources = simulate.generate_district(out / "an_lao", seed=seed)
    warehouse_file = out / "warehouse.duckdb"
    as_of = DEMO_AS_OF
    console.print(f"[bold]2/2[/] running the pipeline on DuckDB (as of {as_of})")
    try:
        with _bars_for_steps(_progress()):
            summary = run_pipeline(
                sources, f"duckdb:///{warehouse_file}", as_of, out / "reports", quiet=True
            )
    except Exception as exc:
        _fail(f"demo failed: {_first_line(exc)}")
    _print_summary(summary)
    _print_on_time_table(Warehouse.from_url(f"duckdb:///{warehouse_file}"))
    console.print(f"\nwarehouse: {warehouse_file}")
    console.print(f"report:    {summary.report_path}")


def _print_on_time_table(warehouse: Warehouse) -> None:
    from flows.report import valid_on

    frame = warehouse.query_df(
        "select t.period_start, t.unit_code, u.unit_name, u.unit_type, t.received, t.resolved, "
        "t.on_time_rate_766, t.on_time_rate_resolved, t.late_rate_need_to_process "
        "from marts.dossier_timeliness t left join marts.dim_unit u on u.unit_code = t.unit_code "
        "and " + valid_on("t.period_start", "u") + " where t.period_grain = 'quarter' "
        "and t.period_start = (select max(period_start) from marts.dossier_timeliness "
        "where period_grain = 'quarter') "
        "order by case u.unit_type when 'province' then 0 when 'district' then 1 else 2 end, "
        "t.unit_code"
    )
    if frame.empty:
        return
    start = frame.period_start.iloc[0]
    table = Table(title=f"On-time rates, quarter {(start.month - 1) // 3 + 1}/{start.year}")
    table.add_column("unit", no_wrap=True, min_width=5)
    table.add_column("name", no_wrap=True)
    for col in ("received", "resolved", "766 %", "resolved %", "late %"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in frame.itertuples():
        table.add_row(
            r.unit_code, r.unit_name or "", str(r.received), str(r.resolved),
            _pct(r.on_time_rate_766), _pct(r.on_time_rate_resolved),
            _pct(r.late_rate_need_to_process),
        )  # fmt: skip
    console.print(table)
    console.print(
        "766 %: (early + on time + open within deadline) / (resolved + open); "
        "resolved %: (early + on time) / resolved; late %: (late + open overdue) / need to process"
    )


def _pct(value) -> str:
    return "—" if value is None or value != value else f"{float(value):.2f}"


@app.command()
def report(
    warehouse: Annotated[str | None, typer.Option(envvar="CCHC_WAREHOUSE_URL")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of")] = None,
    report_dir: Annotated[Path | None, typer.Option(envvar="CCHC_REPORT_DIR")] = None,
):
    """Write the report from what the warehouse holds now."""
    from flows.pipeline import default_report_dir
    from flows.report import write_report

    if warehouse is None:
        _fail("no warehouse: pass --warehouse URL or set CCHC_WAREHOUSE_URL", 2)
    wh = Warehouse.from_url(warehouse)
    day = _parse_date(as_of)
    try:
        path = write_report(wh, day.isoformat(), "report", report_dir or default_report_dir(wh))
    except Exception as exc:
        _fail(f"report failed: {_first_line(exc)}")
    console.print(f"report: {path}")


def main() -> None:  # pragma: no cover
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
