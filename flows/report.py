"""The report for the Home Affairs office: one self-contained HTML page in Vietnamese.

SQL -> plain dicts (JSON values only) -> Jinja -> static HTML. Every data-quality figure
comes from one table, `marts.data_quality_checks` (STYLE: data quality as data); the run
history from `marts.pipeline_runs`, names from `marts.dim_unit`, context from the
due-date audit and timeliness marts. Any of them may be missing (a first run that
failed): the page still renders and says what it lacks. Raw tables are read only for
the engineers' Great Expectations Data Docs, never their personal-data columns.
"""

from __future__ import annotations

import decimal
import json
import logging
import math
import re
import shutil
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path

import jinja2

from flows.warehouse import Connection, Warehouse

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
DATA_DOCS_DIR = "gx-data-docs"
WINDOW_DAYS = 30
TOP_PROBLEMS = 10
RUNS_SHOWN = 10
EXAMPLES_PER_UNIT = 2
CHECKS = "marts.data_quality_checks"

# Checks that are not GX row rules: what the problem is, in plain words.
PROBLEM_LABELS = {
    "file_received": "Không gửi dữ liệu trong ngày",
    "freshness": "Đã 3 ngày làm việc không gửi dữ liệu",
    "volume_drop": "Số dòng gửi giảm bất thường so với ngày thường",
    "due_date_later_than_law": "Ngày hẹn trả muộn hơn thời hạn luật định",
    "batch_accounting": "Số dòng đọc không khớp số dòng đã nạp và bị loại",
    "mart_row_count": "Bảng số liệu giảm quá một nửa số dòng so với lần trước",
}
# What a source sends, for "did not send ... data".
KIND_NOUNS = {
    "dossier_files": "hồ sơ",
    "dossier_api": "hồ sơ (qua API)",
    "task_files": "nhiệm vụ",
    "document_files": "văn bản đi",
}
TYPE_ORDER = {"province": 0, "district": 1, "commune": 2, "department": 3}
LIGHT_ORDER = {"red": 0, "amber": 1, "green": 2}
RUN_STATUS = {
    "published": "Đã công bố",
    "failed": "Thất bại",
    "interrupted": "Bị ngắt giữa chừng",
    "running": "Đang chạy",
}
SILENCE = {"file_received", "freshness"}
PERSONAL = {"applicant_name", "applicant_id"}  # raw layer only: never read here


def valid_on(day: str, alias: str = "") -> str:
    """SQL condition: the dim_unit version valid on `day` (an expression or placeholder)."""
    p = f"{alias}." if alias else ""
    return (
        f"({p}valid_from is null or {p}valid_from <= {day}) "
        f"and ({p}valid_to is null or {p}valid_to >= {day})"
    )


# -- reading: every value leaves SQL as text, an integer or a float


def _plain(value):
    if value is None:
        return None
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _rows(conn: Connection, sql: str, params=None) -> list[dict]:
    frame = conn.fetch_df(sql, params)
    return [
        {k: _plain(v) for k, v in row.items()} for row in frame.astype(object).to_dict("records")
    ]


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text[:10]) if text else None


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _present_tables(conn: Connection) -> set[str]:
    rows = conn.fetchall(
        "select table_schema, table_name from information_schema.tables "
        "where table_schema in ('marts', 'raw')"
    )
    return {f"{s}.{t}" for s, t in rows}


# -- gathering


def gather(warehouse: Warehouse, as_of: str, run_id: str) -> dict:
    """Everything the page shows, as plain JSON values."""
    now = datetime.now()
    with warehouse.connect() as conn:
        present = _present_tables(conn)
        runs = _runs(conn, present, run_id, now)
        kinds = _source_kinds(conn, present)
        has_checks = CHECKS in present
        day = _data_day(conn, present, as_of) if has_checks else date.fromisoformat(as_of)
        start = day - timedelta(days=WINDOW_DAYS - 1)
        checks = _window_checks(conn, start, day) if has_checks else []
        technical = _technical(conn) if has_checks else []
        last_days = _last_days(conn, day) if has_checks else {}
        codes = sorted({c["entity_code"] for c in checks if c["entity_type"] in ("unit", "source")})
        names = _unit_names(conn, present, day)
        due = _due_dates(conn, present, start, day)
        timeliness = _timeliness(conn, present, day)

    units = _units(checks, day, names, kinds, codes)
    by_code = {u["code"]: u for u in units}
    lights = sorted(
        units, key=lambda u: (LIGHT_ORDER[u["light"]], TYPE_ORDER.get(u["type"], 4), u["code"])
    )
    counts = {c: sum(1 for u in units if u["light"] == c) for c in LIGHT_ORDER}
    silent = _silent(checks, day, by_code, kinds, last_days)
    problems = _top_problems(checks, by_code)
    trend = _trend(checks, start, day)
    for u in units:
        u["timeliness"] = timeliness.get(u["code"])
    for d in due:
        d["name"] = names.get(d["unit_code"], {}).get("name", "")
    latest = runs[0] if runs else None
    failed = latest if latest and latest["status"] in ("failed", "interrupted") else None
    district = [u["name"] for u in units if u["type"] == "district"]
    return {
        "as_of": as_of,
        "day": day.isoformat(),
        "window_start": start.isoformat(),
        "run_id": run_id,
        "warehouse": warehouse.display(),
        "generated_at": now.isoformat(timespec="minutes"),
        "scope": district[0] if len(district) == 1 else "",
        "has_checks": has_checks,
        "has_due_audit": "marts.dossier_due_date_audit" in present,
        "has_runs": "marts.pipeline_runs" in present,
        "failed_run": failed,
        "lights": lights,
        "counts": counts,
        "silent": silent,
        "problems": problems,
        "trend": trend,
        "due_dates": due,
        "runs": runs,
        "technical": technical,
        "units": sorted(units, key=lambda u: (TYPE_ORDER.get(u["type"], 4), u["code"])),
        "data_docs": None,
    }


def _runs(conn: Connection, present: set[str], run_id: str, now: datetime) -> list[dict]:
    if "marts.pipeline_runs" not in present:
        return []
    runs = _rows(
        conn,
        "select run_id, cast(as_of as varchar) as as_of, "
        "cast(started_at as varchar) as started_at, cast(finished_at as varchar) as finished_at, "
        "status, reason, rows_read, rows_loaded, "
        f"rows_quarantined from marts.pipeline_runs order by started_at desc limit {RUNS_SHOWN}",
    )
    for r in runs:
        r["current"] = r["run_id"] == run_id
        if r["current"] and r["status"] == "running" and "raw.loaded_files" in present:
            # The pipeline writes the report after publishing and before it records the
            # end of the run: its rows are in loaded_files already.
            totals = _rows(
                conn,
                "select cast(coalesce(sum(rows_read), 0) as bigint) as r, "
                "cast(coalesce(sum(rows_loaded), 0) as bigint) as l, "
                "cast(coalesce(sum(rows_quarantined), 0) as bigint) as q "
                "from raw.loaded_files where run_id = %s",
                [run_id],
            )[0]
            r.update(status="published", rows_read=totals["r"], rows_loaded=totals["l"],
                     rows_quarantined=totals["q"])  # fmt: skip
        started, finished = _moment(r["started_at"]), _moment(r["finished_at"])
        end = finished or (now if r["current"] else None)
        r["seconds"] = round((end - started).total_seconds()) if started and end else None
        r["status_vi"] = RUN_STATUS.get(r["status"], r["status"])
    return runs


def _source_kinds(conn: Connection, present: set[str]) -> dict[str, str]:
    """Source name -> kind, from what the recent runs recorded."""
    if "marts.pipeline_runs" not in present:
        return {}
    kinds = {}
    for r in _rows(
        conn,
        "select sources_json from marts.pipeline_runs where sources_json is not null "
        "order by started_at desc limit 30",
    ):
        for name, s in json.loads(r["sources_json"]).items():
            kinds.setdefault(name, s.get("kind"))
    return kinds


def _data_day(conn: Connection, present: set[str], as_of: str) -> date:
    """The day the published checks describe: the as-of day of the run that wrote them
    (after a failed run, the previous publication's), else the latest daily check."""
    rows = _rows(conn, f"select distinct run_id from {CHECKS}")
    if len(rows) == 1 and "marts.pipeline_runs" in present:
        found = _rows(
            conn,
            "select cast(as_of as varchar) as as_of from marts.pipeline_runs where run_id = %s",
            [rows[0]["run_id"]],
        )
        if found:
            return _day(found[0]["as_of"])
    latest = _rows(
        conn,
        f"select cast(max(period_start) as varchar) as d from {CHECKS} "
        "where check_code in ('file_received', 'freshness')",
    )
    return _day(latest[0]["d"]) if latest and latest[0]["d"] else date.fromisoformat(as_of)


def _window_checks(conn: Connection, start: date, day: date) -> list[dict]:
    """The window's checks, one row per check, unit, source, day and status."""
    return _rows(
        conn,
        "select check_code, min(check_name) as check_name, entity_type, entity_code, "
        "source_name, cast(period_start as varchar) as period_start, status, "
        "cast(sum(coalesce(records_affected, 0)) as bigint) as affected, "
        "cast(sum(coalesce(records_checked, 0)) as bigint) as checked, "
        "min(example_code) as example_code, min(message_vi) as message_vi "
        f"from {CHECKS} where period_start >= %s and period_start <= %s "
        "group by check_code, entity_type, entity_code, source_name, period_start, status",
        [start, day],
    )


def _technical(conn: Connection) -> list[dict]:
    """Checks on the build itself (dbt tests, mart row counts), per status."""
    return _rows(
        conn,
        "select case when check_code like 'dbt.%%' then 'dbt' else check_code end as kind, "
        "status, count(*) as n, min(message_vi) as example "
        f"from {CHECKS} where entity_type in ('model', 'mart') group by 1, 2 order by 1, 2",
    )


def _last_days(conn: Connection, day: date) -> dict[tuple, str]:
    """(unit, source) -> the last file day with rows, over the whole history."""
    rows = _rows(
        conn,
        "select entity_code, source_name, cast(max(period_start) as varchar) as d "
        f"from {CHECKS} where check_code = 'batch_accounting' and records_checked > 0 "
        "and period_start <= %s group by entity_code, source_name",
        [day],
    )
    return {(r["entity_code"], r["source_name"]): r["d"] for r in rows}


def _unit_names(conn: Connection, present: set[str], day: date) -> dict[str, dict]:
    if "marts.dim_unit" not in present:
        return {}
    rows = _rows(
        conn,
        "select unit_code, max(unit_name) as unit_name, max(unit_type) as unit_type "
        f"from marts.dim_unit where {valid_on('%s')} group by unit_code",
        [day, day],
    )
    return {r["unit_code"]: {"name": r["unit_name"], "type": r["unit_type"]} for r in rows}


def _due_dates(conn: Connection, present: set[str], start: date, day: date) -> list[dict]:
    if "marts.dossier_due_date_audit" not in present:
        return []
    units = _rows(
        conn,
        "select unit_code, count(*) as n, max(days_later) as max_days, "
        "sum(case when received_at >= %s then 1 else 0 end) as recent "
        "from marts.dossier_due_date_audit group by unit_code order by count(*) desc, unit_code",
        [start],
    )
    examples = _rows(
        conn,
        "select unit_code, dossier_code, cast(received_at as varchar) as received_at, "
        "cast(due_at as varchar) as due_at, cast(legal_due_at as varchar) as legal_due_at, "
        "days_later from (select a.*, row_number() over (partition by unit_code "
        "order by received_at desc, dossier_code) as k from marts.dossier_due_date_audit a) x "
        f"where k <= {EXAMPLES_PER_UNIT} order by unit_code, received_at desc",
    )
    for u in units:
        u["examples"] = [e for e in examples if e["unit_code"] == u["unit_code"]]
    return units


def _timeliness(conn: Connection, present: set[str], day: date) -> dict[str, dict]:
    """Each unit's quarter to date: received, resolved, late, on-time rate."""
    if "marts.dossier_timeliness" not in present:
        return {}
    quarter = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    rows = _rows(
        conn,
        "select unit_code, received, resolved, late, in_progress_overdue, on_time_rate_766 "
        "from marts.dossier_timeliness where period_grain = 'quarter' and period_start = %s",
        [quarter],
    )
    label = f"Quý {(quarter.month - 1) // 3 + 1}/{quarter.year}"
    return {r["unit_code"]: {**r, "label": label} for r in rows}


# -- shaping


@cache
def _rule_sentences() -> dict[str, str]:
    """GX rule -> its Vietnamese sentence, from the stored suites."""
    from flows import validate

    sentences = {}
    for suite in sorted(validate.EXPECTATIONS_DIR.glob("*.json")):
        for e in json.loads(suite.read_text("utf-8")).get("expectations", []):
            meta = e.get("meta") or {}
            if meta.get("rule") and meta.get("message_vi"):
                sentences.setdefault(meta["rule"], meta["message_vi"])
    return sentences


def _problem_label(check: dict) -> str:
    """Plain words, never a bare rule code."""
    code = check["check_code"]
    if code in PROBLEM_LABELS:
        return PROBLEM_LABELS[code]
    if code.startswith("dbt."):
        return f"Kiểm thử kỹ thuật của bảng {check['entity_code']} không đạt"
    name = check.get("check_name")
    if not name or name == code:
        name = _rule_sentences().get(code) or check.get("message_vi") or code
    return name


def _amount(check: dict) -> tuple[int, str]:
    """How much a finding weighs, and in what: rows, dossiers, or (for a unit that sent
    nothing, whose records_affected says little) times it happened."""
    if check["check_code"] in SILENCE:
        return 1, "lần"
    unit = "hồ sơ" if check["check_code"] == "due_date_later_than_law" else "dòng"
    return check["affected"], unit


def _noun(source: str | None, kinds: dict[str, str]) -> str:
    return KIND_NOUNS.get(kinds.get(source or ""), source or "")


def _units(checks, day, names, kinds, codes) -> list[dict]:
    today = day.isoformat()
    by_entity: dict[str, list[dict]] = {}
    for c in checks:
        if c["entity_type"] in ("unit", "source"):
            by_entity.setdefault(c["entity_code"], []).append(c)
    units = []
    for code in codes:
        own = by_entity.get(code, [])
        on_day = [c for c in own if c["period_start"] == today]
        statuses = {c["status"] for c in on_day}
        light = "red" if "FAIL" in statuses else "amber" if "WARN" in statuses else "green"
        known = names.get(code)
        is_source = all(c["entity_type"] == "source" for c in own)
        if known:
            name, kind = known["name"], known["type"]
        elif is_source:
            name, kind = f"Dữ liệu {_noun(code, kinds)} (nguồn {code})", "source"
        else:
            name, kind = "Đơn vị chưa có trong danh mục", "other"
        reasons = []
        stale = {c["source_name"] for c in on_day if (c["check_code"], c["status"]) == (
            "freshness", "FAIL")}  # fmt: skip
        for c in sorted(on_day, key=lambda c: (c["status"] != "FAIL", c["check_code"])):
            if c["status"] not in ("FAIL", "WARN"):
                continue
            if c["check_code"] == "file_received" and c["source_name"] in stale:
                continue  # said more strongly by freshness
            if c["check_code"] in SILENCE:
                text = f"{_problem_label(c)} ({_noun(c['source_name'], kinds)})"
            else:
                n, what = _amount(c)
                text = f"{n} {what}: {_problem_label(c)}"
            if text not in reasons:
                reasons.append(text)
        accounting = [c for c in own if c["check_code"] == "batch_accounting"]
        sources = []
        order = list(KIND_NOUNS)
        for source in sorted(
            {c["source_name"] or "" for c in accounting},
            key=lambda s: (order.index(kinds[s]) if kinds.get(s) in order else len(order), s),
        ):
            rows = [c for c in accounting if (c["source_name"] or "") == source]
            read = sum(c["checked"] for c in rows)
            dropped = sum(c["affected"] for c in rows)
            sources.append({
                "source": source, "noun": _noun(source, kinds),
                "days": len({c["period_start"] for c in rows}),
                "read": read, "loaded": read - dropped, "dropped": dropped,
                "last_day": max(c["period_start"] for c in rows),
            })  # fmt: skip
        issues = sorted(
            (
                {
                    "day": c["period_start"],
                    "label": _problem_label(c),
                    "status": c["status"],
                    "affected": _amount(c)[0],
                    "unit": _amount(c)[1],
                    "example_code": c["example_code"],
                    "noun": _noun(c["source_name"], kinds),
                }
                for c in own
                if c["status"] in ("FAIL", "WARN")
            ),
            key=lambda i: (-_day(i["day"]).toordinal(), i["status"] != "FAIL", i["label"]),
        )
        units.append({
            "code": code, "name": name, "type": kind, "light": light, "reasons": reasons,
            "sources": sources, "issues": issues,
            "read": sum(s["read"] for s in sources), "dropped": sum(s["dropped"] for s in sources),
        })  # fmt: skip
    return units


def _silent(checks, day, by_code, kinds, last) -> list[dict]:
    """Who sent nothing on the day, or nothing for 3 working days, and their last data."""
    today = day.isoformat()
    found = {}
    for c in checks:
        if c["period_start"] != today or (c["check_code"], c["status"]) not in (
            ("file_received", "WARN"),
            ("freshness", "FAIL"),
        ):
            continue
        key = (c["entity_code"], c["source_name"])
        row = found.setdefault(key, {
            "code": c["entity_code"], "name": by_code.get(c["entity_code"], {}).get("name", ""),
            "noun": _noun(c["source_name"], kinds), "source": c["source_name"],
            "stale": False, "last_day": last.get(key),
        })  # fmt: skip
        row["stale"] = row["stale"] or c["check_code"] == "freshness"
    return sorted(found.values(), key=lambda r: (not r["stale"], r["last_day"] or "", r["code"]))


def _top_problems(checks, by_code) -> list[dict]:
    groups: dict[str, dict] = {}
    for c in checks:
        if c["status"] not in ("FAIL", "WARN"):
            continue
        g = groups.setdefault(c["check_code"], {
            "check_code": c["check_code"], "label": _problem_label(c), "affected": 0,
            "unit": _amount(c)[1],
            "failed": False, "units": {}, "example_code": None, "example_day": None,
            "no_example": c["check_code"] in SILENCE,
        })  # fmt: skip
        g["affected"] += _amount(c)[0]
        g["failed"] = g["failed"] or c["status"] == "FAIL"
        g["units"][c["entity_code"]] = by_code.get(c["entity_code"], {}).get("name", "")
        if c["example_code"] and (
            g["example_code"] is None or c["example_code"] < g["example_code"]
        ):
            g["example_code"] = c["example_code"]
        if g["example_day"] is None or (c["period_start"], c["entity_code"]) < g["example_day"]:
            g["example_day"] = (c["period_start"], c["entity_code"])
    top = sorted(groups.values(), key=lambda g: (-g["affected"], not g["failed"], g["label"]))
    out = []
    for g in top[:TOP_PROBLEMS]:
        units = [{"code": k, "name": v} for k, v in sorted(g["units"].items())]
        day_, code = g["example_day"]
        example_unit = g["units"].get(code) or code
        out.append({**g, "units": units, "example_day": day_, "example_unit": example_unit})
    return out


def _nice_max(value: int) -> int:
    if value <= 0:
        return 1
    base = 10 ** int(math.log10(value))
    for step in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if value <= step * base:
            return int(step * base) if step * base >= 1 else 1
    return value


def _trend(checks, start: date, day: date) -> dict:
    """Rows accepted and quarantined per file day, as a hand-drawn SVG's geometry."""
    read = {}
    dropped = {}
    for c in checks:
        if c["check_code"] == "batch_accounting":
            read[c["period_start"]] = read.get(c["period_start"], 0) + c["checked"]
            dropped[c["period_start"]] = dropped.get(c["period_start"], 0) + c["affected"]
    days = [start + timedelta(days=i) for i in range((day - start).days + 1)]
    series = [
        {
            "day": d.isoformat(),
            "accepted": read.get(d.isoformat(), 0) - dropped.get(d.isoformat(), 0),
            "dropped": dropped.get(d.isoformat(), 0),
            "weekend": d.weekday() >= 5,
        }
        for d in days
    ]
    width, left, right = 720, 46, 8
    top_h, gap, low_h, axis_h = 150, 26, 50, 22
    slot = (width - left - right) / len(series)
    top_max = _nice_max(max((s["accepted"] for s in series), default=0))
    low_max = _nice_max(max((s["dropped"] for s in series), default=0))
    low_y = 10 + top_h + gap
    bars = []
    for i, s in enumerate(series):
        x = left + i * slot + slot * 0.15
        h = top_h * s["accepted"] / top_max
        q = low_h * s["dropped"] / low_max if s["dropped"] else 0
        d = date.fromisoformat(s["day"])
        bars.append({
            **s, "x": round(x, 1), "w": round(slot * 0.7, 1),
            "y": round(10 + top_h - h, 1), "h": round(h, 1),
            "qy": round(low_y + low_h - q, 1), "qh": round(q, 1),
            "cx": round(x + slot * 0.35, 1),
            "slot_x": round(left + i * slot, 1), "slot_w": round(slot, 1),
            "label": f"{d:%d/%m}" if i % 5 == 0 or i == len(series) - 1 else "",
        })  # fmt: skip
    ticks = [
        {"y": round(10 + top_h - top_h * f, 1), "value": round(top_max * f)} for f in (0, 0.5, 1)
    ]
    return {
        "width": width,
        "height": low_y + low_h + axis_h,
        "left": left,
        "right": width - right,
        "top": 10,
        "top_base": 10 + top_h,
        "low_top": low_y,
        "low_base": low_y + low_h,
        "ticks": ticks,
        "low_max": low_max,
        "bars": bars,
        "total_accepted": sum(s["accepted"] for s in series),
        "total_dropped": sum(s["dropped"] for s in series),
        "days_with_data": sum(1 for s in series if s["accepted"] or s["dropped"]),
    }


# -- Great Expectations Data Docs, for engineers


def build_data_docs(warehouse: Warehouse, day: str, out_dir: Path) -> dict:
    """Validate the day's loaded rows of each source kind with the stored suites and
    build GX Data Docs into `<out_dir>/gx-data-docs/`. Their CDN references are removed
    so that opening them never calls out. Returns what the report says about them."""
    import great_expectations as gx

    from flows import validate

    # GX sets this one of its loggers to INFO itself (a line per context about a temp dir)
    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.ERROR)
    target = Path(out_dir) / DATA_DOCS_DIR
    work = Path(out_dir) / f".{DATA_DOCS_DIR}.partial"
    shutil.rmtree(work, ignore_errors=True)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    context.add_data_docs_site(
        site_name="cchc",
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                              "base_directory": str(work)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )  # fmt: skip
    pandas_source = context.data_sources.add_pandas("cchc")
    batches = []
    for suite_name, frame in _day_batches(warehouse, day):
        stored = json.loads((validate.EXPECTATIONS_DIR / f"{suite_name}.json").read_text("utf-8"))
        # SQL-only expectations read the warehouse's reference tables (flows.audit runs them)
        stored["expectations"] = [
            e for e in stored["expectations"] if e["type"] != "unexpected_rows_expectation"
        ]
        suite = context.suites.add(gx.ExpectationSuite(**stored))
        batch = pandas_source.add_dataframe_asset(suite_name).add_batch_definition_whole_dataframe(
            day
        )
        result = context.validation_definitions.add(
            gx.ValidationDefinition(data=batch, suite=suite, name=f"{suite_name} {day}")
        ).run(batch_parameters={"dataframe": frame})
        batches.append({
            "suite": suite_name, "rows": len(frame), "success": bool(result.success),
            "expectations": len(result.results),
            "failed": sum(1 for r in result.results if not r.success),
        })  # fmt: skip
    context.build_data_docs(site_names=["cchc"])
    external = _strip_network_references(work)
    for b in batches:  # GX names its pages by run time: find each suite's
        found = sorted((work / "validations" / b["suite"]).rglob("*.html"))
        b["validation_page"] = found[-1].relative_to(work).as_posix() if found else None
        suite_page = work / "expectations" / f"{b['suite']}.html"
        b["suite_page"] = suite_page.relative_to(work).as_posix() if suite_page.exists() else None
    # GX's own index lists its pages with jQuery and bootstrap-table from CDNs: offline it
    # is empty, so a static one takes its place.
    (work / "index.html").write_text(
        _environment()
        .get_template("data_docs_index.html.j2")
        .render(d={"day": f"{date.fromisoformat(day):%d/%m/%Y}", "batches": batches}),
        encoding="utf-8",
    )
    shutil.rmtree(target, ignore_errors=True)
    work.replace(target)
    return {
        "href": f"{DATA_DOCS_DIR}/index.html",
        "day": day,
        "batches": batches,
        "removed_references": external,
    }


def _day_batches(warehouse: Warehouse, day: str):
    """(suite, frame) per source kind: the rows loaded from the day's files, shaped as the
    loader validated them (`<col>__text` beside typed columns), personal data left out."""
    import pandas as pd

    from flows import raw_schema
    from flows.sources import document_files, dossier_files, task_files

    kinds = [
        (dossier_files, "l.file_path not like 'api/%%'", "dossier_files"),
        (dossier_files, "l.file_path like 'api/%%'", "dossier_api"),
        (task_files, "true", "task_files"),
        (document_files, "true", "document_files"),
    ]
    with warehouse.connect() as conn:
        if not {"raw.loaded_files", "raw.row_flags"} <= _present_tables(conn):
            return
        flags = conn.fetch_df(
            "select x.source_name, x.file_path, x.row_number, x.rule, x.value "
            "from raw.row_flags x join raw.loaded_files f on f.source_name = x.source_name "
            "and f.file_path = x.file_path and f.load_id = x.load_id "
            "where f.file_date = %s and x.rule like '%%_unreadable'",
            [day],
        )
        for module, where, suite in kinds:
            columns = [c for c in raw_schema.TABLES[module.TABLE] if c not in PERSONAL]
            # the day's files first, then their rows by load (PostgreSQL's index): the
            # log's own file_date has none, and filtering on it read the whole history
            frame = conn.fetch_df(
                f"select {', '.join('l.' + c for c in columns)}, f.unit_folder "
                f"from raw.loaded_files f join raw.{module.TABLE} l "
                "on f.source_name = l.source_name and f.file_path = l.file_path "
                f"and f.load_id = l.load_id where f.file_date = %s and {where} "
                "order by l.file_path, l.row_number",
                [day],
            )
            if frame.empty:
                continue
            for column, kind in module.TYPES.items():
                if column in PERSONAL or kind in ("text", "unit"):
                    continue
                if kind in ("datetime", "date"):
                    frame[column] = pd.to_datetime(frame[column])
                else:
                    frame[column] = pd.to_numeric(frame[column]).astype("Int64")
                text = frame[column].astype(str).where(frame[column].notna(), "")
                # a cell written but unreadable was loaded empty and flagged with its text
                mine = flags[flags.rule == f"{column}_unreadable"]
                if len(mine):
                    written = {
                        (r.source_name, r.file_path, int(r.row_number)): r.value
                        for r in mine.itertuples()
                    }
                    keys = zip(
                        frame.source_name,
                        frame.file_path,
                        frame.row_number.astype(int),
                        strict=True,
                    )
                    text = pd.Series(
                        [written.get(k, t) for k, t in zip(keys, text, strict=True)],
                        index=frame.index,
                    )
                frame[f"{column}__text"] = text
            for alias, column in module.DAYS.items():
                frame[alias] = frame[column].dt.normalize()
            yield suite, frame


_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.I | re.S)
_EXTERNAL_LINK = re.compile(r"<link\b[^>]*\bhref=[\"']https?://[^>]*>", re.I)
_LOCAL_STATIC = re.compile(r"(=[\"'])(?:\.{1,2}/)*static/")
_EXTERNAL_IMAGE = re.compile(r"https://great-expectations-web-assets[^\"'?]*/([\w.-]+)(\?[^\"']*)?")
# Bootstrap's layout is gone with its CDN: enough style to read the tables.
_OFFLINE_STYLE = (
    "<style>body{font-family:sans-serif;margin:1em auto;max-width:1100px;padding:0 1em}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}"
    "nav ol,nav ul{list-style:none;padding:0}nav li{display:inline;margin-right:1em}"
    "img{max-height:48px}.cooltip .top,.tooltip{display:none}</style>"
)


def _strip_network_references(site: Path) -> int:
    """GX's pages load Bootstrap, jQuery, Vega and Font Awesome from CDNs and images from
    S3. Opening them offline must fetch nothing: drop every script (they only drive those
    libraries) and remote stylesheet, point images at the site's own copies. The pages
    keep their content, not their widgets. Returns how many references were removed."""
    removed = 0
    for page in site.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        html, scripts = _SCRIPT.subn("", html)
        html, links = _EXTERNAL_LINK.subn("", html)
        root = "../" * (len(page.relative_to(site).parts) - 1)
        # GX gets the depth of its own favicon wrong on validation pages
        html = _LOCAL_STATIC.sub(lambda m, root=root: f"{m.group(1)}{root}static/", html)
        local = root + "static/images/"

        def image(match: re.Match, local=local) -> str:
            name = match.group(1)
            return local + (name if (site / "static/images" / name).exists() else "logo-long.png")

        html, images = _EXTERNAL_IMAGE.subn(image, html)
        html = html.replace("</head>", _OFFLINE_STYLE + "</head>", 1)
        removed += scripts + links + images
        page.write_text(html, encoding="utf-8")
    return removed


# -- rendering


def _vn_number(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}".replace(",", "X").replace(".", ",").replace("X", ".")
    return f"{int(value):,}".replace(",", ".")


def _vn_date(value) -> str:
    return f"{_day(value):%d/%m/%Y}" if value else ""


def _vn_short_date(value) -> str:
    return f"{_day(value):%d/%m}" if value else ""


def _vn_time(value) -> str:
    return f"{_moment(value):%d/%m/%Y %H:%M}" if value else ""


def _duration(seconds) -> str:
    if seconds is None:
        return "—"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} phút {rest} giây" if minutes else f"{rest} giây"


def _pct(value) -> str:
    return "—" if value is None else _vn_number(float(value)) + "%"


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(data: dict) -> str:
    env = _environment()
    env.filters.update(
        num=_vn_number, vndate=_vn_date, shortdate=_vn_short_date, vntime=_vn_time,
        duration=_duration, pct=_pct,
    )  # fmt: skip
    return env.get_template("report.html.j2").render(r=data)


def write_report(
    warehouse: Warehouse, as_of: str, run_id: str, out_dir: Path, data_docs: bool = True
) -> Path:
    """The report; with `data_docs`, GX Data Docs of the day beside it (a backfill builds
    them for its last day only)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"cchc-report-{as_of}.html"
    data = gather(warehouse, as_of, run_id)
    try:
        if data_docs:
            data["data_docs"] = build_data_docs(warehouse, as_of, out_dir)
    except Exception as exc:  # the officials' page matters more than the engineers' docs
        log.warning("Great Expectations Data Docs were not built: %s", exc)
        data["data_docs"] = {"error": " ".join(str(exc).split())[:300] or type(exc).__name__}
    # The template sees JSON values only (STYLE: data -> JSON -> Jinja -> HTML).
    html = render(json.loads(json.dumps(data, ensure_ascii=False)))
    # Write beside, then rename: a reader never opens a half-written report.
    partial = path.with_suffix(".html.partial")
    partial.write_text(html, encoding="utf-8")
    partial.replace(path)
    return path
