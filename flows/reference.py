"""Reference data from well-kept packages: official units and the working-day calendar."""

from __future__ import annotations

import json
from datetime import date, timedelta
from functools import cache
from pathlib import Path

import holidays
import pandas as pd

MERGER_DAY = date(2025, 7, 1)  # two-tier local government from this day (DOMAIN §1)
LAST_LEGACY_DAY = MERGER_DAY - timedelta(days=1)
CALENDAR_YEARS = range(2015, 2036)


def _package_data() -> Path:
    import vietnamadminunits

    return Path(vietnamadminunits.__file__).parent / "data"


def _query(sql: str) -> pd.DataFrame:
    from vietnamadminunits.database import query

    return pd.DataFrame(query(sql))


@cache
def admin_units() -> pd.DataFrame:
    """Every official unit before and after 1 July 2025, one row per version of a code.

    A code that survives the merger (the surviving unit keeps its code) has two rows:
    the legacy version (valid to 30 June 2025, successor = itself) and the new one.
    """
    legacy = _query(
        "select provinceCode, province, provinceKey, districtCode, district, districtKey, "
        "wardCode, ward, wardKey from admin_units_legacy"
    )
    current = _query(
        "select provinceCode, province, provinceKey, wardCode, ward, wardKey from admin_units"
    )
    converter = json.loads((_package_data() / "converter_2025.json").read_text(encoding="utf-8"))

    new_province_of_old = {
        old: new for new, olds in converter["DICT_PROVINCE"].items() for old in olds
    }
    new_province_code = dict(zip(current.provinceKey, current.provinceCode, strict=False))
    new_ward_code = {
        (p, w): c
        for p, w, c in zip(current.provinceKey, current.wardKey, current.wardCode, strict=False)
    }
    successor_key: dict[str, tuple[str, str]] = {}
    for new_prov, wards in converter["DICT_PROVINCE_WARD_NO_DIVIDED"].items():
        for new_ward, old_keys in wards.items():
            for old_key in old_keys:
                successor_key[old_key] = (new_prov, new_ward)
    for new_prov, divided in converter["DICT_PROVINCE_WARD_DIVIDED"].items():
        for old_key, targets in divided.items():
            default = next((t["newWardKey"] for t in targets if t["isDefaultNewWard"]), None)
            if default and old_key not in successor_key:
                successor_key[old_key] = (new_prov, default)

    rows = []
    provinces = legacy.drop_duplicates("provinceCode")
    for p in provinces.itertuples():
        new_key = new_province_of_old.get(p.provinceKey)
        rows.append(
            _unit(
                p.provinceCode,
                p.province,
                "province",
                None,
                p.provinceCode,
                None,
                LAST_LEGACY_DAY,
                new_province_code.get(new_key),
            )
        )
    for d in legacy.drop_duplicates("districtCode").itertuples():
        rows.append(
            _unit(
                d.districtCode,
                d.district,
                "district",
                d.provinceCode,
                d.provinceCode,
                None,
                LAST_LEGACY_DAY,
                None,
            )
        )
    for w in legacy[legacy.wardCode.notna() & (legacy.wardCode != "")].itertuples():
        target = successor_key.get(f"{w.provinceKey}_{w.districtKey}_{w.wardKey}")
        rows.append(
            _unit(
                w.wardCode,
                w.ward,
                "commune",
                w.districtCode,
                w.provinceCode,
                None,
                LAST_LEGACY_DAY,
                new_ward_code.get(target) if target else None,
            )
        )
    for p in current.drop_duplicates("provinceCode").itertuples():
        rows.append(
            _unit(
                p.provinceCode, p.province, "province", None, p.provinceCode, MERGER_DAY, None, None
            )
        )
    for w in current.itertuples():
        rows.append(
            _unit(
                w.wardCode,
                w.ward,
                "commune",
                w.provinceCode,
                w.provinceCode,
                MERGER_DAY,
                None,
                None,
            )
        )
    frame = pd.DataFrame(rows)
    frame["valid_from"] = pd.to_datetime(frame["valid_from"])
    frame["valid_to"] = pd.to_datetime(frame["valid_to"])
    return frame.sort_values(["unit_code", "valid_from"], na_position="first").reset_index(
        drop=True
    )


def _unit(code, name, unit_type, parent, province, valid_from, valid_to, successor) -> dict:
    return {
        "unit_code": code,
        "unit_name": name,
        "unit_type": unit_type,
        "parent_unit_code": parent,
        "province_code": province,
        "valid_from": valid_from,
        "valid_to": valid_to,
        "successor_unit_code": successor,
    }


@cache
def calendar() -> pd.DataFrame:
    """Working days 2015-2035 for Vietnam: weekends and public holidays off, swaps honoured.

    `holidays` knows lunar holidays, compensatory days off and the government's swapped
    days (e.g. Saturday 26/4/2025 worked so that Friday 2/5/2025 was off).
    """
    vn = holidays.country_holidays("VN", years=CALENDAR_YEARS, language="vi")
    days = pd.date_range(date(CALENDAR_YEARS[0], 1, 1), date(CALENDAR_YEARS[-1], 12, 31), freq="D")
    return pd.DataFrame(
        {
            "calendar_date": days,
            "is_working_day": [vn.is_working_day(ts.date()) for ts in days],
            "holiday_name": [vn.get(ts.date()) for ts in days],
        }
    )
