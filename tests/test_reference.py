"""Reference data comes from the packages, not from hand-typed lists."""

from __future__ import annotations

from datetime import date

import pandas as pd

from flows import reference


def test_unit_lists_hold_legacy_and_post_2025_units():
    units = reference.admin_units()
    legacy = units[units.valid_from.isna()]
    current = units[units.valid_from == pd.Timestamp("2025-07-01")]
    assert (legacy.unit_type == "commune").sum() == 10035
    assert (legacy.unit_type == "province").sum() == 63
    assert (current.unit_type == "commune").sum() == 3321
    assert (current.unit_type == "province").sum() == 34
    assert not units.duplicated(["unit_code", "valid_from"]).any()


def test_an_lao_communes_map_to_their_2025_successors():
    units = reference.admin_units()
    an_lao = units[(units.parent_unit_code == "313") & units.valid_from.isna()]
    assert len(an_lao) == 17
    successor = dict(zip(an_lao.unit_name, an_lao.successor_unit_code, strict=True))
    # From the package's converter: Thị trấn An Lão, An Tiến, An Thắng, Tân Dân -> Xã An Lão.
    assert {
        successor[n] for n in ["Thị trấn An Lão", "Xã An Tiến", "Xã An Thắng", "Xã Tân Dân"]
    } == {"11629"}
    assert successor["Xã Bát Trang"] == "11635"  # Xã An Trường
    assert all(an_lao.valid_to == pd.Timestamp("2025-06-30"))
    new_names = units[units.valid_from.notna()].set_index("unit_code").unit_name
    assert new_names["11629"] == "Xã An Lão"


def test_calendar_knows_lunar_new_year_and_swapped_days():
    cal = reference.calendar().set_index("calendar_date").is_working_day
    assert not any(cal[pd.Timestamp(date(2024, 2, d))] for d in range(8, 15))  # Tết 2024
    assert cal[pd.Timestamp("2024-02-15")]
    assert cal[pd.Timestamp("2025-04-26")]  # Saturday worked ...
    assert not cal[pd.Timestamp("2025-05-02")]  # ... so that Friday 2 May was off
    assert not cal[pd.Timestamp("2025-09-02")]
    assert cal.index.min() == pd.Timestamp("2015-01-01")
    assert cal.index.max() == pd.Timestamp("2035-12-31")
