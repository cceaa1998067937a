"""`cchc run` end to end on the sample district, on DuckDB and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re

import pandas as pd
import pytest

from flows.publish import PUBLISHED
from flows.warehouse import Warehouse

# the sample district's runs are shared: its readers share one xdist worker
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sample_district")]

AS_OF = "2025-06-30"
MARTS = ["dim_unit", "fct_dossier", "dossier_timeliness"]


def _normal(value):
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, decimal.Decimal | float):
        return round(float(value), 6)
    if isinstance(value, pd.Timestamp | dt.datetime | dt.date):
        return pd.Timestamp(value).isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return _normal(value.item())
    return value


# What records a run rather than the data: a rerun adds its own row and stamps.
RUN_RECORDS = {"marts.pipeline_runs"}
RUN_STAMPS = {"run_id", "checked_at"}


def table_rows(warehouse: Warehouse, schema: str, table: str, drop=()) -> list[tuple]:
    frame = warehouse.query_df(f"select * from {schema}.{table}")
    frame = frame.drop(columns=[c for c in drop if c in frame.columns])
    rows = [tuple(_normal(v) for v in row) for row in frame.astype(object).values.tolist()]
    return sorted(rows, key=repr)


def snapshot(warehouse: Warehouse) -> dict[str, list[tuple]]:
    with warehouse.connect() as conn:
        tables = conn.fetchall(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('raw', 'marts') order by 1, 2"
        )
    return {
        f"{s}.{t}": table_rows(warehouse, s, t, RUN_STAMPS if t == "data_quality_checks" else ())
        for s, t in tables
    }


def test_marts_are_identical_on_duckdb_and_postgres(runs):
    for mart in MARTS:
        duck = runs["duckdb"]["first"][f"marts.{mart}"]
        pg = runs["postgres"]["first"][f"marts.{mart}"]
        assert len(duck) > 0, mart
        assert duck == pg, f"marts.{mart} differs between DuckDB and PostgreSQL"


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_second_run_on_same_inputs_changes_nothing(runs, kind):
    first, second = runs[kind]["first"], runs[kind]["second"]
    assert set(first) == set(second)
    assert {t for t in first if t.startswith("raw.")} >= {"raw.dossier_log", "raw.loaded_files"}
    for table in set(first) - RUN_RECORDS:
        assert first[table] == second[table], f"{table} changed on rerun ({kind})"
    # the run history records the rerun, and nothing else changed in it
    assert len(second["marts.pipeline_runs"]) == len(first["marts.pipeline_runs"]) + 1
    runs_table = runs[kind]["warehouse"].query_df(
        "select status, rows_read, rows_loaded, rows_quarantined from marts.pipeline_runs "
        "order by started_at"
    )
    assert list(runs_table.status) == ["published", "published"]
    assert runs_table.rows_read.iloc[1] == 0  # nothing new the second time


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def test_at_a_console_each_step_is_a_bar_that_moves_and_a_captured_run_has_none(runs):
    console, captured = runs["duckdb"]["output"]
    screen = ANSI.sub("", console)
    files = runs["duckdb"]["warehouse"].query_df(
        "select source_name, count(*) as n from raw.loaded_files group by source_name"
    ).set_index("source_name").n  # fmt: skip
    published = int(re.search(r"published: (\d+) marts", screen).group(1))
    # the audit's counts of what publish copied: the rows BI reads
    rows = int(re.search(r"published: \d+ marts, ([\d,]+) rows", screen).group(1).replace(",", ""))
    assert rows == sum(runs["duckdb"]["warehouse"].query_df(f"select count(*) as n from marts.{m}")
                       .n[0] for m in PUBLISHED)  # fmt: skip
    expected = {
        **{f"load {source}": (n, "files") for source, n in files.items()},
        "build marts (dbt)": (None, "dbt nodes"),
        "publish marts": (published, "marts"),
    }
    for label, (total, unit) in expected.items():
        seen = [tuple(map(int, m)) for m in
                re.findall(rf"{re.escape(label)} .*?(\d+)/(\d+) +{unit}", screen)]  # fmt: skip
        assert seen, f"no bar for {label!r} on the console"
        assert seen[-1][0] == seen[-1][1] == (total or seen[-1][1]) > 0, (label, seen[-1])
    nodes_done = {done for done, _ in re.findall(r"build marts \(dbt\) .*?(\d+)/(\d+)", screen)}
    assert len(nodes_done) >= 3, f"the dbt bar did not move: {sorted(nodes_done)}"
    for step in ("prepare warehouse", "audit marts", "write report"):
        assert re.search(rf"{step} .*?1/1", screen), step
    assert "Finished in state Completed" in screen  # the logs still print, above the bars
    for label in expected:  # a log file gets no bars
        assert label not in captured, label


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_every_row_read_is_loaded_or_quarantined(runs, kind):
    warehouse = runs[kind]["warehouse"]
    files = warehouse.query_df(
        "select source_name, sum(rows_read) as r, sum(rows_loaded) as l, "
        "sum(rows_quarantined) as q, count(*) as n from raw.loaded_files group by source_name"
    ).set_index("source_name")
    tables = {"xa_an_lao": "dossier_log", "nhiem_vu": "task_log", "van_ban_di": "document_log"}
    assert set(files.index) == set(tables)
    for source, table in tables.items():
        r, l_, q = (int(files.loc[source, c]) for c in ("r", "l", "q"))
        assert r == l_ + q, source
        in_raw = warehouse.query_df(
            f"select count(*) as n from raw.{table} where source_name = %s", [source]
        ).n[0]
        assert in_raw == l_, source
    assert int(files.loc["xa_an_lao", "q"]) > 0  # the sample holds a few bad rows on purpose


def test_sample_bad_rows_are_all_quarantined(runs, sample_district):
    import json

    truth = json.loads((sample_district.parent / "_truth" / "bad_rows.json").read_text("utf-8"))
    quarantine = runs["duckdb"]["warehouse"].query_df(
        "select file_path, row_number from raw.quarantine"
    )
    found = set(zip(quarantine.file_path, quarantine.row_number.astype(int), strict=True))
    expected = {(b["file"].split("/", 1)[1], b["row"]) for b in truth}
    assert expected <= found


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_no_personal_data_in_any_mart_or_the_report(runs, kind):
    """Names and identity numbers live in the raw layer only: no published table, no
    report page (nor the engineers' Data Docs beside it) holds one."""
    warehouse = runs[kind]["warehouse"]
    people = warehouse.query_df(
        "select distinct applicant_name, applicant_id from raw.dossier_log "
        "where applicant_name is not null"
    )
    assert len(people) > 100
    names = {" ".join(n.split()) for n in people.applicant_name}
    ids = set(people.applicant_id.dropna())
    texts = [
        str(value)
        for table, rows in runs[kind]["second"].items()
        if table.startswith("marts.")
        for row in rows
        for value in row
        if value is not None
    ]
    texts += [p.read_text("utf-8", "replace") for p in runs[kind]["reports"].rglob("*")
              if p.is_file() and p.suffix in (".html", ".json", ".csv", ".txt")]  # fmt: skip
    assert len(texts) > 1000
    found = set()
    for text in texts:
        found |= set(re.findall(r"\d{9,12}", text)) & ids
        words = re.findall(r"\w+", text)
        for size in (2, 3, 4, 5):
            for i in range(len(words) - size + 1):
                phrase = " ".join(words[i : i + size])
                if phrase in names:
                    found.add(phrase)
    # a person may share a name with a place: "Đinh Văn Lâm" is in "Xã Đinh Văn Lâm Hà"
    places = "\n".join(
        warehouse.query_df(
            "select unit_name from raw.ref_admin_units union select unit_name "
            "from raw.registered_units"
        ).unit_name
    )
    found = {f for f in found if f not in places}
    assert not found, f"personal data published ({kind}): {sorted(found)[:5]}"


def test_report_lists_units_files_and_quarantine_reasons(runs):
    html = next(runs["duckdb"]["reports"].glob("*.html")).read_text(encoding="utf-8")
    assert "Tình hình dữ liệu theo đơn vị và tệp" in html
    assert "Xã Bát Trang" in html
    assert "Ngày tiếp nhận trống, sai định dạng hoặc không tồn tại." in html
    assert "<script src=" not in html and "http://" not in html and "https://" not in html


def test_district_row_rolls_up_its_communes(runs):
    warehouse = runs["duckdb"]["warehouse"]
    frame = warehouse.query_df(
        "select t.unit_code, t.received, t.resolved from marts.dossier_timeliness t "
        "where t.period_grain = 'quarter' and t.period_start = date '2025-04-01'"
    ).set_index("unit_code")
    communes = [c for c in frame.index if len(c) == 5]
    assert len(communes) == 17
    own = warehouse.query_df(
        "select count(*) as n from marts.fct_dossier where unit_code = '313' "
        "and status_code <> 1 and received_at >= date '2025-04-01'"
    ).n[0]
    assert frame.loc["313", "received"] == frame.loc[communes, "received"].sum() + own
    assert frame.loc["31", "received"] == frame.loc["313", "received"]


def test_bad_sources_file_fails_with_one_line(tmp_path, cchc):
    missing, url = str(tmp_path / "missing.yml"), f"duckdb:///{tmp_path / 'w.duckdb'}"
    result = cchc("run", "--sources", missing, "--warehouse", url, "--as-of", AS_OF)
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "sources file not found" in result.stderr


def test_unreachable_warehouse_fails_with_one_line(sample_district, cchc):
    nowhere = "postgresql://postgres@127.0.0.1:1/nowhere"
    result = cchc(
        "run", "--sources", str(sample_district), "--warehouse", nowhere, "--as-of", AS_OF
    )
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "PostgreSQL" in result.stderr


def test_dim_unit_holds_legacy_and_2025_units_with_converter_successors(runs):
    warehouse = runs["postgres"]["warehouse"]
    counts = warehouse.query_df(
        "select unit_type, valid_from is null as legacy, count(*) as n from marts.dim_unit "
        "where unit_type in ('commune', 'province') group by 1, 2"
    )
    n = {(r.unit_type, bool(r.legacy)): int(r.n) for r in counts.itertuples()}
    assert n[("commune", True)] == 10035
    assert n[("commune", False)] == 3321
    assert n[("province", True)] == 63
    assert n[("province", False)] == 34
    an_lao = warehouse.query_df(
        "select unit_code, unit_name, successor_unit_code from marts.dim_unit "
        "where parent_unit_code = '313' and unit_type = 'commune'"
    )
    successor = dict(zip(an_lao.unit_name, an_lao.successor_unit_code, strict=True))
    assert len(successor) == 17
    # as the package's converter says: four old units became Xã An Lão (11629) ...
    for name in ["Thị trấn An Lão", "Xã An Tiến", "Xã An Thắng", "Xã Tân Dân"]:
        assert successor[name] == "11629"
    # ... and Bát Trang, Trường Thọ, Trường Thành became Xã An Trường (11635)
    for name in ["Xã Bát Trang", "Xã Trường Thọ", "Xã Trường Thành"]:
        assert successor[name] == "11635"
    departments = warehouse.query_df(
        "select unit_code, province_code from marts.dim_unit where unit_type = 'department'"
    )
    assert set(departments.unit_code) == {"313-TNMT", "313-KTHT", "313-TCKH", "313-NV"}
    assert set(departments.province_code) == {"31"}


def test_a_commune_that_absorbed_two_others_carries_their_three_histories(runs):
    """Xã Quang Trung (11647) absorbed 11644 and 11650 on 1 July 2025 (the converter):
    read against today's units, its history is the sum of the three communes'."""
    counts = ["received", "resolved", "late", "in_progress_overdue"]
    for kind in ("duckdb", "postgres"):
        warehouse = runs[kind]["warehouse"]
        legacy = warehouse.query_df(
            f"select period_grain, period_start, {', '.join(f'sum({c}) as {c}' for c in counts)}, "
            "count(*) as merged_units from marts.dossier_timeliness "
            "where unit_code in ('11644', '11647', '11650') group by 1, 2 order by 1, 2"
        )
        current = warehouse.query_df(
            f"select period_grain, period_start, {', '.join(counts)}, merged_units "
            "from marts.dossier_timeliness_current_units where unit_code = '11647' order by 1, 2"
        )
        assert len(current) and (legacy.merged_units == 3).all()

        def rows(frame):
            return [(r[0], str(r[1])[:10], *(int(v) for v in r[2:])) for r in frame.values.tolist()]

        assert rows(legacy) == rows(current)
        gone = warehouse.query_df(
            "select count(*) as n from marts.dossier_timeliness_current_units "
            "where unit_code in ('11644', '11650')"
        )
        assert gone.n[0] == 0


def test_published_marts_carry_bilingual_comments_on_postgres(runs):
    """BI tools read column comments: every published mart column has its description."""
    missing = runs["postgres"]["warehouse"].query_df(
        "select c.table_name, c.column_name from information_schema.columns c "
        "where c.table_schema = 'marts' and coalesce(col_description("
        "format('%I.%I', c.table_schema, c.table_name)::regclass, c.ordinal_position), '') "
        "not like '% / %'"
    )
    assert missing.empty, missing.to_dict("records")
    tables = runs["postgres"]["warehouse"].query_df(
        "select table_name, obj_description(format('marts.%I', table_name)::regclass) as d "
        "from information_schema.tables where table_schema = 'marts'"
    )
    assert len(tables) >= 12 and tables.d.str.contains(" / ").all(), tables.to_dict("records")
