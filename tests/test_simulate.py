"""The sample district generator: reproducible, in the contract's format, broken where it says."""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections import Counter, defaultdict
from datetime import date, datetime
from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook
from typer.testing import CliRunner

from flows import simulate
from flows.settings import load_sources_file

HEADER_LINE = ",".join(simulate.HEADERS)
DEPARTMENT_CODES = [code for code, _ in simulate.DEPARTMENTS]
# Every Vietnamese letter, in both cases: what each encoding must carry through.
VIETNAMESE_LETTERS = "aàáảãạăằắẳẵặâầấẩẫậeèéẻẽẹêềếểễệiìíỉĩịoòóỏõọôồốổỗộơờớởỡợuùúủũụưừứửữựyỳýỷỹỵđ"
VIETNAMESE_LETTERS += VIETNAMESE_LETTERS.upper()


def _parse_moment(text: str) -> datetime:
    for pattern in ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y"):
        try:
            return datetime.strptime(text, pattern)
        except ValueError:
            continue
    raise ValueError(text)


def _sheet_text(value) -> str:
    """A spreadsheet cell as text: whole numbers without `.0`, empty cells empty."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _read_rows(path: Path, file_format: str = simulate.UTF8_BOM) -> list[list[str]]:
    """Every row of a file written in `file_format`, decoded back to NFC text."""
    if file_format == simulate.XLSX:
        sheet = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0)
        return [[_sheet_text(v) for v in row] for row in sheet.to_python(skip_empty_area=False)]
    encoding = {
        simulate.UTF8_BOM: "utf-8-sig",
        simulate.UTF8: "utf-8",
        simulate.UTF8_NFD: "utf-8",
        simulate.WINDOWS_1258: "cp1258",
    }[file_format]
    text = unicodedata.normalize("NFC", path.read_bytes().decode(encoding))
    return list(csv.reader(io.StringIO(text, newline="")))


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
def formats(district) -> dict[str, str]:
    return json.loads((district / "_truth" / "formats.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def dossier_files(district, formats) -> list[tuple[str, list[list[str]]]]:
    """(relative path, decoded rows including the header) of every dossier file."""
    files = []
    for path in sorted((district / "communes").glob("*/*")):
        relative = path.relative_to(district).as_posix()
        files.append((relative, _read_rows(path, formats[path.parent.name])))
    return files


@pytest.fixture(scope="module")
def bad_rows(district) -> list[dict]:
    return json.loads((district / "_truth" / "bad_rows.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def good_rows(dossier_files, bad_rows) -> list[tuple[str, int, list[str]]]:
    """(file, row number, cells) of every row not listed as broken, in file order."""
    broken = {(entry["file"], entry["row"]) for entry in bad_rows}
    rows = []
    for relative, file_rows in dossier_files:
        for number, cells in enumerate(file_rows[1:], start=2):
            if (relative, number) not in broken:
                rows.append((relative, number, cells))
    return rows


@pytest.fixture(scope="module")
def task_rows(district) -> list[tuple[str, dict[str, str]]]:
    """(file date, row by header) of every task file row, in file order."""
    rows = []
    for path in sorted((district / "tasks").iterdir()):
        header, *body = _read_rows(path)
        assert tuple(header) == simulate.TASK_HEADERS, path
        rows.extend((path.stem, dict(zip(header, cells, strict=True))) for cells in body)
    return rows


# --- The dossier files ----------------------------------------------------------------


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path):
    options = {"end": date(2025, 5, 10), "days": 12}
    first = _tree_bytes(simulate.generate_district(tmp_path / "a", seed=11, **options).parent)
    again = _tree_bytes(simulate.generate_district(tmp_path / "b", seed=11, **options).parent)
    other = _tree_bytes(simulate.generate_district(tmp_path / "c", seed=12, **options).parent)

    assert len(first) > 100
    assert any(name.endswith(".xlsx") for name in first)  # workbooks too carry no clock time
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
        "  - name: nhiem_vu\n"
        "    kind: task_files\n"
        "    path: tasks\n"
        "  - name: van_ban_di\n"
        "    kind: document_files\n"
        "    path: documents\n"
    )
    parsed = load_sources_file(district / "sources.yml")
    assert [(s.name, s.kind) for s in parsed.sources] == [
        ("xa_an_lao", "dossier_files"),
        ("nhiem_vu", "task_files"),
        ("van_ban_di", "document_files"),
    ]
    assert all(source.path.is_dir() for source in parsed.sources)
    units = _read_rows(district / "units.csv", simulate.UTF8)
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


def test_formats_file_names_each_desks_format_and_its_files_are_in_it(district, formats):
    folders = sorted(path.name for path in (district / "communes").iterdir())
    counts = Counter(formats.values())

    assert sorted(formats) == folders
    assert counts[simulate.XLSX] == 2 and counts[simulate.WINDOWS_1258] == 2
    assert counts[simulate.UTF8_NFD] == 1
    assert counts[simulate.UTF8_BOM] > 5 and counts[simulate.UTF8] >= 2
    for unit, file_format in formats.items():
        files = sorted((district / "communes" / unit).iterdir())
        assert files, unit
        for path in files:
            content = path.read_bytes()
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}\.(csv|xlsx)", path.name)
            if file_format == simulate.XLSX:
                assert path.suffix == ".xlsx" and content[:4] == b"PK\x03\x04", path
                continue
            assert path.suffix == ".csv", path
            assert content.startswith(b"\xef\xbb\xbf") == (file_format == simulate.UTF8_BOM)
            if file_format == simulate.WINDOWS_1258:
                with pytest.raises(UnicodeDecodeError):
                    content.decode("utf-8")  # really legacy bytes, not UTF-8
                continue
            text = content.decode("utf-8-sig")
            nfd = file_format == simulate.UTF8_NFD
            assert (text == unicodedata.normalize("NFD", text)) == nfd, path
            assert (text == unicodedata.normalize("NFC", text)) != nfd, path


def test_every_file_has_the_exact_headers_once_decoded(dossier_files):
    for relative, rows in dossier_files:
        assert rows[0] == list(simulate.HEADERS), relative


@pytest.mark.parametrize("file_format", simulate.FILE_FORMATS)
def test_each_format_decodes_back_to_the_same_nfc_text(tmp_path, file_format):
    rows = [
        # Codes that a careless writer turns into numbers: leading and trailing zeros.
        ["H31.13.00052-250401-0001", "00052", "1.001190", "1", "01/04/2025 07:05:00",
         "02/04/2025", "", "", "2", "0", "50.000", "0", "1", "0", "0", "",
         "Đặng Thị Thùy Dương", "031090123456", "01/04/2025 07:05:00"],
        ["H31.13.11629-250401-0002", "11629", "2.000815", "2", "01/04/2025 07:06",
         "01/04/2025 11:06", "01/04/2025 09:00", "01/04/2025 09:10", "10", "1", "4000",
         "2", "1", "1", "1", "01/04/2025", VIETNAMESE_LETTERS, "001300000000",
         "01/04/2025 09:10"],
    ]  # fmt: skip
    path = tmp_path / f"file{'.xlsx' if file_format == simulate.XLSX else '.csv'}"
    simulate.write_dossier_file(path, rows, file_format, datetime(2025, 4, 1, 17, 30))

    assert _read_rows(path, file_format) == [list(simulate.HEADERS), *rows]
    if file_format == simulate.XLSX:
        sheet = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()
        # Codes, dates and names are text cells; counts and flags may be numbers.
        assert [type(value) for value in sheet[1][:3]] == [str, str, str]
        assert isinstance(sheet[1][4], str) and isinstance(sheet[1][17], str)
        assert sheet[1][10] == "50.000"


def test_windows_1258_keeps_its_own_letters_and_combines_the_rest():
    converted = simulate.windows_1258_text(VIETNAMESE_LETTERS)
    encoded = converted.encode("cp1258")

    assert unicodedata.normalize("NFC", encoded.decode("cp1258")) == VIETNAMESE_LETTERS
    assert simulate.windows_1258_text("ệ") == "ê\u0323"  # circumflex kept, dot below combining
    assert simulate.windows_1258_text("ở") == "ơ\u0309"
    assert simulate.windows_1258_text("ã") == "a\u0303"
    assert simulate.windows_1258_text("Đà") == "Đà"  # both exist precomposed
    assert len(encoded) < 2 * len(VIETNAMESE_LETTERS)  # a letter takes at most two bytes


def test_all_rows_have_19_fields_except_the_recorded_broken_ones(dossier_files, bad_rows):
    broken = {(entry["file"], entry["row"]) for entry in bad_rows}
    wrong_width = set()
    for relative, rows in dossier_files:
        for number, cells in enumerate(rows, start=1):
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
        assert updated.date().isoformat() == Path(relative).stem, where


def test_names_decode_to_the_same_nfc_text_in_every_format(good_rows, formats):
    """Whatever the encoding, a decoded name is made of the generator's own NFC words."""
    words = {
        unicodedata.normalize("NFC", word)
        for names in (
            [name for name, _ in simulate.FAMILY_NAMES],
            simulate.MALE_MIDDLE,
            simulate.FEMALE_MIDDLE,
            simulate.MALE_GIVEN,
            simulate.FEMALE_GIVEN,
        )
        for word in names
    }
    seen_formats = set()
    for relative, number, cells in good_rows:
        assert set(cells[16].split(" ")) <= words, f"{relative}:{number} {cells[16]!r}"
        seen_formats.add(formats[relative.split("/")[1]])
    assert seen_formats == set(simulate.FILE_FORMATS)


def test_a_dossier_reappears_as_its_status_moves_on(good_rows):
    history = defaultdict(list)
    for relative, _, cells in good_rows:
        history[(cells[1], cells[0])].append((Path(relative).stem, _parse_moment(cells[18]), cells))

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
        day = date.fromisoformat(Path(relative).stem)
        if day in {date(2025, 4, 30), date(2025, 5, 1), date(2025, 5, 2)} or day.weekday() == 6:
            assert cells[3] == "2" and cells[8] in {"1", "2"}, f"{relative}:{number}"


def test_each_recorded_broken_row_is_where_the_truth_file_says(district, bad_rows, formats):
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
        unit = entry["file"].split("/")[1]
        rows = _read_rows(district / entry["file"], formats[unit])
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
    # Quarantine is exercised on every unusual format; a sheet cannot hold a short row.
    formats_hit = {formats[entry["file"].split("/")[1]] for entry in bad_rows}
    assert {simulate.XLSX, simulate.WINDOWS_1258, simulate.UTF8_NFD} <= formats_hit
    assert not [
        entry for entry in bad_rows if entry["column"] is None and entry["file"].endswith(".xlsx")
    ]


def test_catalogue_codes_stay_text(district, good_rows):
    with simulate.CATALOGUE_PATH.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    codes = [row["procedure_code"] for row in rows]

    assert list(rows[0])[:8] == [
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


# --- Tasks of the departments ----------------------------------------------------------


def test_task_files_follow_the_contract(district, task_rows):
    names = sorted(path.name for path in (district / "tasks").iterdir())
    assert names and all(re.fullmatch(r"2025-\d{2}-\d{2}\.csv", name) for name in names)
    assigners = {"UBND thành phố Hải Phòng", "UBND huyện An Lão"}
    for file_day, row in task_rows:
        where = f"{file_day} {row['Mã nhiệm vụ']}"
        assert re.fullmatch(r"NV-2025-\d{4}", row["Mã nhiệm vụ"]), where
        assert row["Đơn vị chủ trì"] in DEPARTMENT_CODES, where
        assert row["Cơ quan giao"] in assigners, where
        assert len(row["Trích yếu"]) > 20, where
        assigned = datetime.strptime(row["Ngày giao"], "%d/%m/%Y").date()
        deadline = datetime.strptime(row["Hạn hoàn thành"], "%d/%m/%Y").date()
        assert assigned < deadline, where
        if row["Ngày hoàn thành"]:
            assert datetime.strptime(row["Ngày hoàn thành"], "%d/%m/%Y").date() >= assigned
        updated = datetime.strptime(row["Ngày cập nhật"], "%d/%m/%Y %H:%M:%S")
        assert updated.date().isoformat() == file_day, where
    assert {row["Cơ quan giao"] for _, row in task_rows} == assigners
    # Summaries are Vietnamese text, some with commas (quoted in the CSV).
    assert any("," in row["Trích yếu"] for _, row in task_rows)


def test_a_task_reappears_when_it_is_completed(task_rows):
    history = defaultdict(list)
    for file_day, row in task_rows:
        history[row["Mã nhiệm vụ"]].append((file_day, row))

    for task_id, changes in history.items():
        days = [day for day, _ in changes]
        assert days == sorted(days) and len(set(days)) == len(days), task_id
        # Once completed, a task does not come back; only its last row says so.
        assert all(not row["Ngày hoàn thành"] for _, row in changes[:-1]), task_id
        assert len({row["Ngày giao"] for _, row in changes}) == 1, task_id
    reappeared = [changes for changes in history.values() if len(changes) >= 2]
    assert len(reappeared) > len(history) // 2
    assert any(changes[-1][1]["Ngày hoàn thành"] for changes in reappeared)
    # A few deadlines were extended: the later row carries the new one.
    extended = [c for c in history.values() if len({r["Hạn hoàn thành"] for _, r in c}) > 1]
    assert extended


def test_tasks_per_department_and_their_outcomes(task_rows, district):
    first_rows = {}
    for _, row in task_rows:
        first_rows.setdefault(row["Mã nhiệm vụ"], row)
    per_month = Counter(
        (row["Đơn vị chủ trì"], row["Ngày giao"][3:]) for row in first_rows.values()
    )
    for code in DEPARTMENT_CODES:
        for month in ("05/2025", "06/2025"):  # full months of the sample
            assert 3 <= per_month[(code, month)] <= 17, (code, month)

    truth = json.loads((district / "_truth" / "tasks.json").read_text(encoding="utf-8"))
    assert sorted(entry["task_id"] for entry in truth) == sorted(first_rows)
    # The truth is what the latest row of each task says, evaluated on the last day.
    latest = {row["Mã nhiệm vụ"]: row for _, row in task_rows}
    for entry in truth:
        row = latest[entry["task_id"]]
        deadline = datetime.strptime(row["Hạn hoàn thành"], "%d/%m/%Y").date()
        assert entry["deadline_on"] == deadline.isoformat()
        assert entry["as_of"] == "2025-06-30"
        if row["Ngày hoàn thành"]:
            done = datetime.strptime(row["Ngày hoàn thành"], "%d/%m/%Y").date()
            expected = "done_on_time" if done <= deadline else "done_late"
        else:
            expected = "open_overdue" if deadline < date(2025, 6, 30) else "open_on_time"
        assert entry["outcome"] == expected, entry
    outcomes = Counter(entry["outcome"] for entry in truth)
    assert set(outcomes) == {"done_on_time", "done_late", "open_on_time", "open_overdue"}
    assert outcomes["done_on_time"] > outcomes["done_late"]


# --- Outgoing documents ----------------------------------------------------------------


def test_document_files_follow_the_contract(district):
    from vietnamadminunits.database import query

    communes = [r["wardCode"] for r in query(
        "select wardCode from admin_units_legacy where districtCode = '313'"
    )]  # fmt: skip
    folders = sorted(path.name for path in (district / "documents").iterdir())
    assert folders == sorted([*communes, *DEPARTMENT_CODES])

    numbers: dict[str, list[int]] = defaultdict(list)
    signed = total = 0
    for path in sorted((district / "documents").glob("*/*.csv")):
        unit = path.parent.name
        header, *rows = _read_rows(path)
        assert tuple(header) == simulate.DOCUMENT_HEADERS
        assert rows, path
        issuer = unit.split("-")[1] if "-" in unit else "UBND"
        for number, unit_code, issued, digital in rows:
            match = re.fullmatch(rf"(\d{{2,}})/(?:(QĐ|BC|TB|KH|TTr|GM)-)?{issuer}", number)
            assert match, (path, number)
            assert unit_code == unit
            assert datetime.strptime(issued, "%d/%m/%Y").date().isoformat() == path.stem
            assert digital in {"0", "1"}
            numbers[unit].append(int(match.group(1)))
            signed += digital == "1"
            total += 1

    for unit, issued in numbers.items():
        # One register per unit and year: numbers follow each other, none repeats.
        assert issued == list(range(issued[0], issued[0] + len(issued))), unit
    assert 0.85 <= signed / total <= 0.95
    assert 1500 < total < 8000


# --- The command line ------------------------------------------------------------------


def test_command_line_writes_the_district(tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        simulate.app, ["district", "--out", str(tmp_path), "--end", "2025-04-30", "--days", "5"]
    )

    assert result.exit_code == 0, result.output
    assert "sources.yml" in result.output
    assert sorted(p.name for p in (tmp_path / "communes" / "313").iterdir())[0] == "2025-04-26.csv"
    assert list((tmp_path / "documents").iterdir())

    refused = runner.invoke(simulate.app, ["district", "--out", str(tmp_path), "--end", "30/4"])
    assert refused.exit_code != 0


def test_never_overwrites_files_it_did_not_write(tmp_path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "mine.csv").write_text("keep me", encoding="utf-8")

    with pytest.raises(FileExistsError):
        simulate.generate_district(tmp_path, end=date(2025, 4, 30), days=3)
    assert (tmp_path / "tasks" / "mine.csv").read_text(encoding="utf-8") == "keep me"


# --- Many dossiers, for benchmarks -----------------------------------------------------

SCALE = {"start": date(2025, 3, 1), "end": date(2025, 3, 31)}


def _scale_rows(root: Path) -> list[tuple[str, str, list[str]]]:
    """(unit folder, file day, cells) of every row of a scale run's daily files."""
    rows = []
    for path in sorted((root / "dossiers").glob("*/*.csv")):
        header, *body = _read_rows(path, simulate.UTF8)
        assert header == list(simulate.HEADERS), path
        rows.extend((path.parent.name, path.stem, cells) for cells in body)
    return rows


@pytest.fixture(scope="module")
def scale_run(tmp_path_factory) -> Path:
    from flows.simulate_scale import generate_dossiers

    out = tmp_path_factory.mktemp("scale")
    assert generate_dossiers(out, dossiers=20_000, seed=5, units=12, **SCALE) == out / "sources.yml"
    return out


def test_scale_writes_exactly_the_dossiers_asked_each_one_to_three_times(scale_run):
    from vietnamadminunits.database import query

    rows = _scale_rows(scale_run)
    appearances = Counter((unit, cells[0]) for unit, _, cells in rows)
    communes = query(
        "select wardCode from admin_units_legacy where wardCode is not null order by wardCode "
        "limit 12"
    )
    truth = json.loads((scale_run / "_truth" / "scale.json").read_text(encoding="utf-8"))

    assert len(appearances) == 20_000
    assert set(appearances.values()) == {1, 2, 3}
    assert 1.7 < len(rows) / 20_000 < 2.3
    assert truth["dossiers"] == 20_000 and truth["rows"] == len(rows)
    folders = sorted(path.name for path in (scale_run / "dossiers").iterdir())
    assert folders == [row["wardCode"] for row in communes]
    assert folders[0].startswith("000")  # real codes, leading zeros kept
    sources = load_sources_file(scale_run / "sources.yml").sources
    assert [(s.kind, s.path) for s in sources] == [("dossier_files", scale_run / "dossiers")]

    statuses = Counter()
    for unit, day, cells in rows:
        assert len(cells) == 19, (unit, day, cells)
        assert cells[1] == unit and re.fullmatch(r"\d\.\d{6}", cells[2])
        assert cells[3] in {"1", "2", "3"} and re.fullmatch(r"\d{12}", cells[17])
        received, updated = _parse_moment(cells[4]), _parse_moment(cells[18])
        assert SCALE["start"] <= received.date() <= SCALE["end"]
        assert updated.date().isoformat() == day and updated >= received
        if cells[5]:
            assert _parse_moment(cells[5]) > received
        if cells[6]:
            assert _parse_moment(cells[6]) >= received
        statuses[cells[8]] += 1
    assert set(statuses) == {"1", "2", "3", "4", "5", "7", "8", "9", "10"}


def test_scale_latest_states_look_like_a_real_desk(scale_run):
    latest = {}
    for unit, _, cells in _scale_rows(scale_run):
        latest[(unit, cells[0])] = cells  # files are read in day order
    done = [c for c in latest.values() if c[8] in {"9", "10"}]
    late = [c for c in done if _parse_moment(c[6]) > _parse_moment(c[5])]
    online = [c for c in latest.values() if c[3] == "2"]

    assert 0.8 < len(done) / len(latest) < 0.97
    assert 0.05 < len(late) / len(done) < 0.2
    assert 0.25 < len(online) / len(latest) < 0.45
    assert any("." in c[10] for c in latest.values())  # some fees written `4.000`
    assert all(c[11] == "0" for c in latest.values() if c[3] != "2")


def test_scale_same_seed_same_bytes_and_one_file_holds_the_same_rows(tmp_path):
    from flows.simulate_scale import generate_dossiers

    options = {"dossiers": 3_000, "units": 5, "start": date(2025, 4, 25), "end": date(2025, 5, 6)}
    generate_dossiers(tmp_path / "a", seed=8, **options)
    generate_dossiers(tmp_path / "b", seed=8, **options)
    generate_dossiers(tmp_path / "c", seed=9, **options)
    single = generate_dossiers(tmp_path / "d", seed=8, single_file=True, **options)
    first = _tree_bytes(tmp_path / "a" / "dossiers")

    assert first == _tree_bytes(tmp_path / "b" / "dossiers")
    assert first != _tree_bytes(tmp_path / "c" / "dossiers")
    assert single == tmp_path / "d" / "all.csv"
    header = (HEADER_LINE + "\r\n").encode("utf-8")
    # Day by day, unit by unit: the daily files' rows, in that order, under one header.
    ordered = sorted(first, key=lambda name: (name.split("/")[1], name.split("/")[0]))
    body = b"".join(first[name].removeprefix(header) for name in ordered)
    assert single.read_bytes() == header + body


def test_scale_mixed_formats_hold_the_same_rows_as_plain_utf8(tmp_path):
    from flows.simulate_scale import generate_dossiers

    options = {"dossiers": 4_000, "seed": 3, "units": 20, **SCALE}
    generate_dossiers(tmp_path / "plain", **options)
    generate_dossiers(tmp_path / "mixed", formats="mixed", **options)
    truth = json.loads((tmp_path / "mixed" / "_truth" / "scale.json").read_text("utf-8"))
    unit_formats = truth["unit_formats"]

    assert Counter(unit_formats.values()) == {
        simulate.UTF8: 15,
        simulate.UTF8_BOM: 3,
        simulate.UTF8_NFD: 1,
        simulate.WINDOWS_1258: 1,
    }
    plain = sorted((tmp_path / "plain" / "dossiers").glob("*/*.csv"))
    assert plain
    for path in plain:
        unit = path.parent.name
        twin = tmp_path / "mixed" / "dossiers" / unit / path.name
        assert _read_rows(twin, unit_formats[unit]) == _read_rows(path, simulate.UTF8)
        if unit_formats[unit] != simulate.UTF8:
            assert twin.read_bytes() != path.read_bytes()


def test_scale_memory_follows_the_daily_volume_not_the_total(tmp_path):
    """200,000 dossiers over a year: memory grows far less than what is written."""
    import os
    import subprocess
    import sys

    probe = (
        "import json, resource, sys\n"
        "from pathlib import Path\n"
        "from flows.simulate_scale import generate_dossiers\n"
        "out = Path(sys.argv[1])\n"
        "generate_dossiers(out / 'warm', dossiers=1000, seed=1, units=20, single_file=True)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "path = generate_dossiers(out / 'big', dossiers=200_000, seed=1, units=20,\n"
        "                         single_file=True)\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(json.dumps({'grew_kb': after - before, 'bytes': path.stat().st_size}))\n"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path)],
        capture_output=True, text=True, cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    measured = json.loads(done.stdout.strip().splitlines()[-1])

    assert measured["bytes"] > 50_000_000
    assert measured["grew_kb"] * 1024 < 25_000_000


def test_command_line_writes_many_dossiers(tmp_path):
    runner = CliRunner()
    args = ["dossiers", "--out", str(tmp_path), "--dossiers", "500", "--units", "3",
            "--start", "2025-03-03", "--end", "2025-03-07"]  # fmt: skip
    result = runner.invoke(simulate.app, args)

    assert result.exit_code == 0, result.output
    assert "(500 dossiers)" in result.output and "rows/s" in result.output
    assert len(list((tmp_path / "dossiers").iterdir())) == 3

    single = runner.invoke(simulate.app, [*args, "--single-file"])
    assert single.exit_code == 0, single.output
    assert (tmp_path / "all.csv").read_bytes().startswith(HEADER_LINE.encode("utf-8"))

    mixed_single = runner.invoke(simulate.app, [*args, "--single-file", "--formats", "mixed"])
    assert mixed_single.exit_code != 0
    bad_date = runner.invoke(simulate.app, [*args[:-2], "--end", "7/3/2025"])
    assert bad_date.exit_code != 0


def test_scale_never_overwrites_files_it_did_not_write(tmp_path):
    from flows.simulate_scale import generate_dossiers

    (tmp_path / "all.csv").write_text("keep me", encoding="utf-8")
    with pytest.raises(FileExistsError):
        generate_dossiers(tmp_path, dossiers=10, units=2, single_file=True)
    assert (tmp_path / "all.csv").read_text(encoding="utf-8") == "keep me"
