"""The reference data dbt ships: the procedure catalogue, its local extension, the calendar.

These files are read by the legal due date and by the sample simulator; a code that
lost its text form, a header that moved or an undocumented code would go unnoticed
until a deployment's numbers were wrong.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from datetime import date
from decimal import Decimal
from pathlib import Path

import holidays
import pytest
import yaml

SEEDS = Path(__file__).resolve().parents[1] / "dbt_project" / "seeds"
FIXTURES = Path(__file__).resolve().parents[1] / "dbt_project" / "tests" / "fixtures"

CATALOGUE_HEADER = [
    "procedure_code",
    "procedure_name",
    "sector",
    "level",
    "processing_days",
    "day_type",
    "fee_bearing",
    "fee_vnd",
    "online_level",
]


def _read(path: Path) -> tuple[list[str], list[dict]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


@pytest.fixture(scope="module")
def catalogue() -> list[dict]:
    header, rows = _read(SEEDS / "procedures.csv")
    assert header == CATALOGUE_HEADER
    return rows


def test_catalogue_holds_at_least_100_procedures_with_text_codes(catalogue):
    codes = [row["procedure_code"] for row in catalogue]

    assert len(codes) >= 100
    assert len(set(codes)) == len(codes)
    assert all(re.fullmatch(r"\d\.\d{6}", code) for code in codes), codes
    # the codes the simulator and the tests rely on, and ones whose trailing zeros matter
    assert {"1.001193", "2.000815", "2.000908", "1.004873", "2.000930", "2.000950"} <= set(codes)


def test_catalogue_values_stay_in_their_domains(catalogue):
    for row in catalogue:
        where = row["procedure_code"]
        assert row["level"] in {"commune", "district"}, where
        assert row["day_type"] in {"working", "calendar"}, where
        assert Decimal(row["processing_days"]) > 0, where
        assert row["online_level"] in {"toan_trinh", "mot_phan", ""}, where
        assert (row["fee_bearing"] == "1") == (int(row["fee_vnd"]) > 0), where
        assert row["procedure_name"] == unicodedata.normalize("NFC", row["procedure_name"]), where
        assert row["procedure_name"].strip() and row["sector"].strip(), where
    assert {row["level"] for row in catalogue} == {"commune", "district"}
    assert {row["online_level"] for row in catalogue} == {"toan_trinh", "mot_phan", ""}


def test_every_code_names_its_source_in_the_notes(catalogue):
    notes = (SEEDS / "procedures.md").read_text(encoding="utf-8")
    codes = [row["procedure_code"] for row in catalogue]
    assert [code for code in codes if code not in notes] == []


def test_local_seeds_have_the_shipped_headers_and_text_codes():
    local_header, local_rows = _read(SEEDS / "procedures_local.csv")
    assert local_header == CATALOGUE_HEADER
    assert all(row["procedure_code"].strip() for row in local_rows)

    override_header, overrides = _read(SEEDS / "calendar_overrides.csv")
    assert override_header == ["calendar_date", "is_working_day", "note"]
    for row in overrides:
        date.fromisoformat(row["calendar_date"])
        assert row["is_working_day"] in {"true", "false"}

    config = yaml.safe_load((SEEDS / "_seeds.yml").read_text(encoding="utf-8"))
    types = {seed["name"]: seed["config"]["column_types"] for seed in config["seeds"]}
    for seed in ("procedures", "procedures_local"):
        assert list(types[seed]) == CATALOGUE_HEADER, seed
        assert types[seed]["procedure_code"] == "varchar", seed
    assert list(types["calendar_overrides"]) == override_header


def test_unit_test_calendar_fixture_is_the_real_vietnamese_calendar():
    """The Tết 2024 / May 2025 fixture of the legal-due unit test is the package's calendar."""
    _, rows = _read(FIXTURES / "calendar_vn_tet_2024_and_may_2025.csv")
    vn = holidays.country_holidays("VN", years=[2024, 2025])
    previous = 0
    for row in rows:
        day = date.fromisoformat(row["calendar_date"])
        working = row["is_working_day"] == "true"
        assert working == vn.is_working_day(day), day
        seq = int(row["working_day_seq"])
        assert seq == previous + working, day
        previous = seq
    by_day = {date.fromisoformat(r["calendar_date"]): r["is_working_day"] for r in rows}
    # the days the unit test is about
    assert all(by_day[date(2024, 2, d)] == "false" for d in range(8, 15))
    assert by_day[date(2024, 2, 15)] == "true"
    assert by_day[date(2025, 4, 26)] == "true" and by_day[date(2025, 5, 2)] == "false"
