"""The sample district generator: reproducible, in the contract's format, broken where it says."""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows import simulate

HEADER_LINE = ",".join(simulate.HEADERS)


def _parse_moment(text: str) -> datetime:
    for pattern in ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y"):
        try:
            return datetime.strptime(text, pattern)
        except ValueError:
            continue
    raise ValueError(text)


def _read_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def district(tmp_path_factory) -> Path:
    """The default sample (90 days ending 30/6/2025), generated once for this module."""
    out = tmp_path_factory.mktemp("district")
    sources_file = simulate.generate_district(out)
    assert sources_file == out / "sources.yml"
    return out


@pytest.fixture(scope="module")
def bad_rows(district) -> list[dict]:
    return json.loads((district / "_truth" / "bad_rows.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def good_rows(district, bad_rows) -> list[tuple[str, int, list[str]]]:
    """(file, row number, cells) of every row not listed as broken, in file order."""
    broken = {(entry["file"], entry["row"]) for entry in bad_rows}
    rows = []
    for path in sorted((district / "communes").glob("*/*.csv")):
        relative = path.relative_to(district).as_posix()
        for number, cells in enumerate(_read_rows(path)[1:], start=2):
            if (relative, number) not in broken:
                rows.append((relative, number, cells))
    return rows


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path):
    options = {"end": date(2025, 5, 10), "days": 12}
    first = _tree_bytes(simulate.generate_district(tmp_path / "a", seed=11, **options).parent)
    again = _tree_bytes(simulate.generate_district(tmp_path / "b", seed=11, **options).parent)
    other = _tree_bytes(simulate.generate_district(tmp_path / "c", seed=12, **options).parent)

    assert len(first) > 100
    assert first == again
    changed = [name for name in first if first[name] != other.get(name)]
    assert len(changed) > len(first) // 2


def test_sources_file_and_units_follow_the_contract(district):
    assert (district / "sources.yml").read_text(encoding="utf-8") == (
        "units: units.csv\n"
        "sources:\n"
        "  - name: xa_an_lao\n"
        "    kind: dossier_files\n"
        "    path: communes\n"
    )
    units = _read_rows(district / "units.csv")
    assert units[0] == ["unit_code", "unit_name", "unit_type", "parent_unit_code"]
    assert units[1:] == [
        ["313", "Huyện An Lão", "district", "31"],
        ["313-TNMT", "Phòng Tài nguyên và Môi trường", "department", "313"],
        ["313-KTHT", "Phòng Kinh tế và Hạ tầng", "department", "313"],
        ["313-TCKH", "Phòng Tài chính - Kế hoạch", "department", "313"],
        ["313-NV", "Phòng Nội vụ", "department", "313"],
    ]


def test_one_folder_per_commune_of_the_national_list_plus_the_district_desk(district):
    from vietnamadminunits.database import query

    listed = query("select wardCode from admin_units_legacy where districtCode = '313'")
    communes = sorted(row["wardCode"] for row in listed)
    folders = sorted(path.name for path in (district / "communes").iterdir())

    assert len(communes) == 17
    assert folders == sorted([*communes, "313"])


def test_every_file_has_the_exact_headers_with_and_without_bom(district):
    files = sorted((district / "communes").glob("*/*.csv"))
    starts = {path.read_bytes()[:3] == b"\xef\xbb\xbf" for path in files}

    assert starts == {True, False}  # most files carry a BOM, some do not
    for path in files:
        first_line = path.read_bytes().decode("utf-8-sig").split("\r\n", 1)[0]
        assert first_line == HEADER_LINE, path
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}\.csv", path.name)


def test_all_rows_have_19_fields_except_the_recorded_broken_ones(district, bad_rows):
    broken = {(entry["file"], entry["row"]) for entry in bad_rows}
    wrong_width = set()
    for path in sorted((district / "communes").glob("*/*.csv")):
        relative = path.relative_to(district).as_posix()
        for number, cells in enumerate(_read_rows(path), start=1):
            if len(cells) != 19:
                wrong_width.add((relative, number))
    recorded_wrong_width = {
        (entry["file"], entry["row"])
        for entry in bad_rows
        if entry["problem"] == "wrong number of fields"
    }

    assert wrong_width == recorded_wrong_width
    assert recorded_wrong_width <= broken


def test_good_rows_are_well_formed(good_rows):
    for relative, number, cells in good_rows:
        where = f"{relative}:{number}"
        code, unit, procedure, channel, received, due = cells[:6]
        assert re.fullmatch(r"H31\.13(\.\d{5})?-\d{6}-\d{4}", code), where
        assert relative.split("/")[1] == unit, where
        assert re.fullmatch(r"\d\.\d{6}", procedure), where
        assert channel in {"1", "2", "3"}, where
        assert 1 <= int(cells[8]) <= 10, where
        _parse_moment(received)
        if due:
            assert _parse_moment(due).date() >= _parse_moment(received).date(), where
        assert re.fullmatch(r"\d{12}", cells[17]), where
        updated = _parse_moment(cells[18])
        assert updated.date().isoformat() == relative[-14:-4], where


def test_a_dossier_reappears_as_its_status_moves_on(good_rows):
    history = defaultdict(list)
    for relative, _, cells in good_rows:
        history[(cells[1], cells[0])].append((relative[-14:-4], _parse_moment(cells[18]), cells))

    for key, changes in history.items():
        changes.sort(key=lambda change: change[0])
        days = [day for day, _, _ in changes]
        updates = [updated for _, updated, _ in changes]
        assert len(set(days)) == len(days), key  # at most one row per dossier per file
        assert updates == sorted(updates) and len(set(updates)) == len(updates), key

    long_lives = [changes for changes in history.values() if len(changes) >= 3]
    assert len(long_lives) > 1000
    # A resolved dossier went through reception and processing in earlier files.
    statuses = [cells[8] for _, _, cells in max(long_lives, key=len)]
    assert statuses[0] in {"2", "4"}
    returned = [changes for changes in long_lives if changes[-1][2][8] == "10"]
    for changes in returned[:200]:
        final = changes[-1][2]
        assert final[6] and final[7]  # finished and returned dates are set
        assert _parse_moment(final[7]) >= _parse_moment(final[6])


def test_sample_looks_like_a_real_district(good_rows):
    latest = {}
    for _, _, cells in good_rows:
        latest[(cells[1], cells[0])] = cells
    dossiers = list(latest.values())
    channels = {c: sum(d[3] == c for d in dossiers) / len(dossiers) for c in ("1", "2", "3")}
    statuses = {d[8] for d in dossiers}
    resolved = [d for d in dossiers if d[8] in {"9", "10"}]
    late = [
        d
        for d in resolved
        if int(d[9]) > 1 or _parse_moment(d[6]).date() > _parse_moment(d[5]).date()
    ]
    early = [d for d in resolved if _parse_moment(d[6]).date() < _parse_moment(d[5]).date()]

    assert 10_000 < len(dossiers) < 25_000
    assert 0.5 < channels["1"] < 0.7 and 0.25 < channels["2"] < 0.45 and channels["3"] < 0.1
    assert {"1", "2", "3", "4", "5", "7", "8", "9", "10"} <= statuses
    assert 0.5 < len(early) / len(resolved) < 0.7
    assert 0.05 < len(late) / len(resolved) < 0.2
    assert any(int(d[9]) >= 2 for d in resolved)
    assert any(d[15] for d in late)  # some overdue dossiers carry an apology date
    fees = {d[10] for d in dossiers if d[10] != "0"}
    assert any("." in fee for fee in fees) and any(fee.isdigit() for fee in fees)
    assert any(d[17].startswith("0") for d in dossiers)  # ids keep their leading zero
    assert all(d[11] == "0" for d in dossiers if d[3] != "2")  # only online dossiers pay online


def test_weekends_and_holidays_hold_only_online_submissions(good_rows):
    for relative, number, cells in good_rows:
        day = date.fromisoformat(relative[-14:-4])
        if day in {date(2025, 4, 30), date(2025, 5, 1), date(2025, 5, 2)} or day.weekday() == 6:
            assert cells[3] == "2" and cells[8] in {"1", "2"}, f"{relative}:{number}"


def test_each_recorded_broken_row_is_where_the_truth_file_says(district, bad_rows):
    assert 8 <= len(bad_rows) <= 15
    problems = {entry["problem"] for entry in bad_rows}
    assert problems == {
        "unparseable date",
        "impossible date",
        "status outside 1-10",
        "channel outside 1-3",
        "missing dossier code",
        "wrong number of fields",
    }
    for entry in bad_rows:
        rows = _read_rows(district / entry["file"])
        cells = rows[entry["row"] - 1]  # row numbers count the header as row 1
        if entry["column"] is None:
            assert len(cells) != 19
        else:
            assert len(cells) == 19
            assert cells[simulate.COLUMN[entry["column"]]] == entry["value"]
    examples = {entry["problem"]: entry["value"] for entry in bad_rows}
    assert examples["unparseable date"] == "abc"
    assert examples["impossible date"].startswith("31/02/2025 ")
    assert examples["status outside 1-10"] == "11"
    assert examples["channel outside 1-3"] == "9"


def test_catalogue_codes_stay_text(district, good_rows):
    with simulate.CATALOGUE_PATH.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    codes = [row["procedure_code"] for row in rows]

    assert list(rows[0]) == [
        "procedure_code",
        "procedure_name",
        "sector",
        "level",
        "processing_days",
        "day_type",
        "fee_bearing",
        "fee_vnd",
    ]
    assert len(rows) >= 30 and len(set(codes)) == len(codes)
    assert all(re.fullmatch(r"\d\.\d{6}", code) for code in codes)
    assert {"1.001193", "2.000815", "2.000908"} <= set(codes)
    assert {row["level"] for row in rows} == {"commune", "district"}
    assert all(float(row["processing_days"]) > 0 for row in rows)
    assert all((row["fee_bearing"] == "1") == (int(row["fee_vnd"]) > 0) for row in rows)
    # Every code written in the dossier files is, as text, a catalogue code.
    assert {cells[2] for _, _, cells in good_rows} <= set(codes)


def test_due_dates_skip_weekends_holidays_and_count_the_swapped_saturday():
    calendar = simulate.WorkCalendar([2025])
    three_days = simulate.Procedure("1.004873", "x", "commune", 3, "working", 0)
    half_day = simulate.Procedure("2.000635", "x", "commune", 0.5, "working", 8000)
    thirty_calendar_days = simulate.Procedure("2.001263", "x", "commune", 30, "calendar", 0)

    # 30/4, 1/5 and 2/5/2025 are off; Saturday 26/4/2025 is a working day.
    assert calendar.legal_due(datetime(2025, 4, 29, 9, 0), three_days) == datetime(2025, 5, 7, 9)
    assert calendar.legal_due(datetime(2025, 4, 24, 10, 0), three_days) == datetime(2025, 4, 28, 10)
    # Half a day is four office hours, across the lunch break.
    assert calendar.legal_due(datetime(2025, 6, 2, 10, 0), half_day) == datetime(2025, 6, 2, 16, 0)
    # After closing time the clock starts next working morning.
    assert calendar.legal_due(datetime(2025, 6, 6, 19, 0), half_day) == datetime(2025, 6, 9, 11, 0)
    # A calendar deadline falling on a Sunday moves to Monday.
    assert calendar.legal_due(datetime(2025, 5, 9, 8, 0), thirty_calendar_days) == datetime(
        2025, 6, 9, 8, 0
    )


def test_command_line_writes_the_district(tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        simulate.app, ["district", "--out", str(tmp_path), "--end", "2025-04-30", "--days", "5"]
    )

    assert result.exit_code == 0, result.output
    assert "sources.yml" in result.output
    assert sorted(p.name for p in (tmp_path / "communes" / "313").iterdir())[0] == "2025-04-26.csv"

    refused = runner.invoke(simulate.app, ["district", "--out", str(tmp_path), "--end", "30/4"])
    assert refused.exit_code != 0
