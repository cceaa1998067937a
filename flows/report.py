"""The run report: one self-contained HTML page in Vietnamese (data -> Jinja -> HTML)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import jinja2
import pandas as pd

from flows.warehouse import Warehouse

TEMPLATES = Path(__file__).resolve().parent / "templates"

# Values of these rules may hold a whole raw line, personal data included: never shown.
HIDDEN_VALUE_RULES = {"row_unparseable"}


@dataclass
class ReportContext:
    as_of: str
    run_id: str
    warehouse: str
    generated_at: str
    totals: dict
    units: list[dict]
    timeliness: list[dict]
    period_label: str


def valid_on(day: str, alias: str = "") -> str:
    """SQL condition: the dim_unit version valid on `day` (an expression or placeholder)."""
    p = f"{alias}." if alias else ""
    return (
        f"({p}valid_from is null or {p}valid_from <= {day}) "
        f"and ({p}valid_to is null or {p}valid_to >= {day})"
    )


def _records(frame: pd.DataFrame) -> list[dict]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def gather(warehouse: Warehouse, as_of: str, run_id: str) -> ReportContext:
    files = warehouse.query_df(
        "select f.source_name, coalesce(f.unit_folder, '') as unit_code, f.file_path, "
        "f.file_date, f.encoding, f.rows_read, f.rows_loaded, f.rows_quarantined, f.run_id "
        "from raw.loaded_files f order by f.source_name, unit_code, f.file_path"
    )
    issues = warehouse.query_df(
        "select q.source_name, q.file_path, q.row_number, q.record_code, q.column_name, q.value, "
        "q.rule, q.message_vi from raw.quarantine q "
        "order by q.source_name, q.file_path, q.row_number nulls first, q.rule"
    )
    # the name each unit had on the as-of date (a surviving code changed its name in 2025)
    names = warehouse.query_df(
        f"select unit_code, max(unit_name) as unit_name from marts.dim_unit "
        f"where {valid_on('%s')} group by unit_code",
        [as_of, as_of],
    )
    name_of = dict(zip(names.unit_code, names.unit_name, strict=False))
    issues.loc[issues.rule.isin(HIDDEN_VALUE_RULES), "value"] = None

    units = []
    for unit_code, unit_files in files.groupby("unit_code", sort=True):
        paths = set(unit_files.file_path)
        unit_issues = issues[issues.file_path.isin(paths)]
        units.append(
            {
                "unit_code": unit_code,
                "unit_name": name_of.get(unit_code, ""),
                "files": _records(unit_files),
                "issues": _records(unit_issues),
                "rows_read": int(unit_files.rows_read.sum()),
                "rows_loaded": int(unit_files.rows_loaded.sum()),
                "rows_quarantined": int(unit_files.rows_quarantined.sum()),
                "files_unreadable": int(unit_issues.row_number.isna().sum()),
            }
        )
    units_issues = issues[issues.source_name == "units"]
    if len(units_issues):
        units.append(
            {
                "unit_code": "units.csv",
                "unit_name": "Danh sách đơn vị đăng ký",
                "files": [],
                "issues": _records(units_issues),
                "rows_read": 0,
                "rows_loaded": 0,
                "rows_quarantined": len(units_issues),
                "files_unreadable": 0,
            }
        )

    timeliness = warehouse.query_df(
        "select t.period_start, t.unit_code, u.unit_name, u.unit_type, t.received, t.resolved, "
        "t.early, t.on_time, t.late, t.in_progress_on_time, t.in_progress_overdue, "
        "t.on_time_rate_766, t.on_time_rate_resolved, t.late_rate_need_to_process "
        "from marts.dossier_timeliness t "
        "left join marts.dim_unit u on u.unit_code = t.unit_code and "
        + valid_on("t.period_start", "u")
        + " where t.period_grain = 'quarter' and t.period_start = "
        "(select max(period_start) from marts.dossier_timeliness where period_grain = 'quarter') "
        "order by case when u.unit_type in ('province', 'district') then 0 else 1 end, t.unit_code"
    )
    period_label = ""
    if len(timeliness):
        start = pd.Timestamp(timeliness.period_start.iloc[0])
        period_label = f"Quý {(start.month - 1) // 3 + 1}/{start.year}"
    totals = {
        "files": len(files),
        "rows_read": int(files.rows_read.sum()),
        "rows_loaded": int(files.rows_loaded.sum()),
        "rows_quarantined": int(files.rows_quarantined.sum()),
        "files_unreadable": int(issues.row_number.isna().sum()),
        "units": len(units),
    }
    return ReportContext(
        as_of=as_of,
        run_id=run_id,
        warehouse=warehouse.display(),
        generated_at=datetime.now().strftime("%d/%m/%Y %H:%M"),
        totals=totals,
        units=units,
        timeliness=_records(timeliness),
        period_label=period_label,
    )


def _vn_number(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}".replace(",", "X").replace(".", ",").replace("X", ".")
    return f"{int(value):,}".replace(",", ".")


def _vn_date(value) -> str:
    if value is None or pd.isna(value):
        return ""
    return pd.Timestamp(value).strftime("%d/%m/%Y")


def render(context: ReportContext) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["num"] = _vn_number
    env.filters["vndate"] = _vn_date
    env.filters["pct"] = lambda v: "—" if v is None or pd.isna(v) else _vn_number(float(v)) + "%"
    return env.get_template("report.html.j2").render(r=context)


def write_report(warehouse: Warehouse, as_of: str, run_id: str, out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"cchc-report-{as_of}.html"
    html = render(gather(warehouse, as_of, run_id))
    # Write beside, then rename: a reader never opens a half-written report.
    partial = path.with_suffix(".html.partial")
    partial.write_text(html, encoding="utf-8")
    partial.replace(path)
    return path
