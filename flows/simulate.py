"""Generate a realistic sample district: An Lão (Hải Phòng), its communes and its one-stop desk.

The output looks like what one-stop desks really export (CONTRACTS §1a): one file per
unit per day holding every dossier created or changed that day, so a dossier shows up
again each time its status moves on. Desks run different software, so the files come
as UTF-8 CSV with or without a BOM, decomposed (NFD) UTF-8, legacy Windows-1258 or
Excel workbooks (`_truth/formats.json` says which unit writes which). A handful of
broken rows is mixed in, and listed in `_truth/bad_rows.json`, so that tests know
exactly what must be quarantined.

Beside the dossiers: the task tracker of the district's departments (CONTRACTS §1c,
`_truth/tasks.json` holds each task's outcome at the last day) and the outgoing
documents of the departments and communes (CONTRACTS §1d).

Everything is drawn from `random.Random` seeded per unit: the same options always
give byte-identical files, and nothing depends on the clock.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import random
import re
import shutil
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated
from zipfile import ZIP_DEFLATED, ZipFile, ZipInfo

import holidays
import typer

DISTRICT_CODE = "313"  # Huyện An Lão, Thành phố Hải Phòng
CATALOGUE_PATH = Path(__file__).resolve().parents[1] / "dbt_project" / "seeds" / "procedures.csv"
SOURCE_NAME = "xa_an_lao"
SOURCE_FOLDER = "communes"
TASK_SOURCE_NAME, TASK_FOLDER = "nhiem_vu", "tasks"
DOCUMENT_SOURCE_NAME, DOCUMENT_FOLDER = "van_ban_di", "documents"
TRUTH_FOLDER = "_truth"

HEADERS = tuple(
    unicodedata.normalize("NFC", header)
    for header in (
        "Mã hồ sơ",
        "Mã đơn vị",
        "Mã TTHC",
        "Kênh nộp",
        "Ngày tiếp nhận",
        "Ngày hẹn trả",
        "Ngày kết thúc xử lý",
        "Ngày trả kết quả",
        "Trạng thái",
        "Số lần bổ sung",
        "Lệ phí",
        "Thanh toán trực tuyến",
        "Số hóa",
        "Kết quả điện tử",
        "Tái sử dụng",
        "Ngày xin lỗi",
        "Họ tên người nộp",
        "Số giấy tờ",
        "Ngày cập nhật",
    )
)
COLUMN = {header: index for index, header in enumerate(HEADERS)}
# Columns an Excel export holds as numbers; every other cell (codes, dates, names) is text.
NUMERIC_COLUMNS = frozenset(
    COLUMN[header]
    for header in (
        "Kênh nộp",
        "Trạng thái",
        "Số lần bổ sung",
        "Lệ phí",
        "Thanh toán trực tuyến",
        "Số hóa",
        "Kết quả điện tử",
        "Tái sử dụng",
    )
)
TASK_HEADERS = tuple(
    unicodedata.normalize("NFC", header)
    for header in (
        "Mã nhiệm vụ",
        "Trích yếu",
        "Cơ quan giao",
        "Đơn vị chủ trì",
        "Ngày giao",
        "Hạn hoàn thành",
        "Ngày hoàn thành",
        "Ngày cập nhật",
    )
)
DOCUMENT_HEADERS = tuple(
    unicodedata.normalize("NFC", header)
    for header in ("Số ký hiệu", "Mã đơn vị", "Ngày ban hành", "Ký số")
)

# How a desk's software writes its daily file (CONTRACTS §1a).
UTF8_BOM, UTF8, UTF8_NFD = "csv-utf8-bom", "csv-utf8", "csv-utf8-nfd"
WINDOWS_1258, XLSX = "csv-windows-1258", "xlsx"
FILE_FORMATS = (UTF8_BOM, UTF8, UTF8_NFD, WINDOWS_1258, XLSX)
# Which communes (by position in the national list, so fixed for every seed) run
# software with an unusual export; the others write UTF-8 CSV, most with a BOM.
SPECIAL_FORMATS = {1: UTF8_NFD, 3: XLSX, 6: WINDOWS_1258, 10: XLSX, 14: WINDOWS_1258}

# Departments have no national code: each deployment registers its own (DOMAIN §1).
DEPARTMENTS = (
    ("313-TNMT", "Phòng Tài nguyên và Môi trường"),
    ("313-KTHT", "Phòng Kinh tế và Hạ tầng"),
    ("313-TCKH", "Phòng Tài chính - Kế hoạch"),
    ("313-NV", "Phòng Nội vụ"),
)

# Status codes of the national portal (DOMAIN §2).
REGISTERED, RECEIVED, REFUSED, PROCESSING, SUPPLEMENT = 1, 2, 3, 4, 5
WITHDRAWN, STOPPED, RESOLVED, RETURNED = 7, 8, 9, 10
DESK, ONLINE, POSTAL = 1, 2, 3

# Office hours: 07:00-11:30 and 13:30-17:00, eight hours a working day (DOMAIN §2).
OPEN, LUNCH_START, LUNCH_END, CLOSE = time(7, 0), time(11, 30), time(13, 30), time(17, 0)
MORNING_SECONDS = 4 * 3600 + 1800
OFFICE_SECONDS = 8 * 3600
OFFICE_MINUTES = 8 * 60

# How often each procedure reaches a desk, relative to the others of its level.
# Certified copies and civil status dominate at communes; household businesses,
# building permits and land certificates at the district. Unlisted codes weigh 1.
PROCEDURE_WEIGHTS = {
    "2.000815": 30, "2.000884": 12, "1.001193": 10, "1.004873": 8, "2.000635": 8,
    "2.001035": 6, "1.000656": 5, "1.000894": 5, "1.004859": 2, "1.001776": 2,
    "1.004884": 1.5, "2.000913": 1, "2.001019": 1, "2.000908": 1, "1.001022": 1,
    "1.000689": 1, "1.001731": 1, "1.001699": 1, "1.004746": 0.5, "1.005461": 0.5,
    "1.001653": 0.5, "1.004837": 0.3, "1.004845": 0.2, "1.003583": 0.2, "2.001263": 0.2,
    "1.001612": 10, "1.012783": 10, "1.009994": 8, "2.000720": 6, "1.012784": 5,
    "2.001008": 4, "1.012786": 4, "1.001570": 3, "1.001266": 3, "2.000806": 1.5,
    "2.000528": 1, "2.000575": 1,
}  # fmt: skip

FAMILY_NAMES = (
    ("Nguyễn", 36), ("Trần", 10), ("Lê", 8), ("Phạm", 8), ("Vũ", 6), ("Hoàng", 4),
    ("Đỗ", 4), ("Bùi", 3), ("Đặng", 3), ("Ngô", 2), ("Đào", 2), ("Phan", 2),
    ("Dương", 1.5), ("Đinh", 1.5), ("Mạc", 1), ("Lương", 1), ("Trịnh", 1), ("Hồ", 1),
    ("Nhữ", 0.5), ("Lý", 0.5),
)  # fmt: skip
MALE_MIDDLE = ("Văn", "Văn", "Đức", "Minh", "Quang", "Hữu", "Thành", "Công", "Xuân", "Tiến", "Mạnh")
FEMALE_MIDDLE = ("Thị", "Thị", "Thị", "Thu", "Ngọc", "Thanh", "Minh", "Phương", "Hồng", "Thùy")
MALE_GIVEN = (
    "Anh", "Bình", "Cường", "Dũng", "Đạt", "Hải", "Hiếu", "Hùng", "Huy", "Khánh", "Long",
    "Minh", "Nam", "Phong", "Quân", "Sơn", "Thắng", "Toàn", "Trung", "Tuấn", "Việt", "Vinh",
    "Đông", "Kiên", "Thịnh", "Hưng", "Lâm", "Tùng",
)  # fmt: skip
FEMALE_GIVEN = (
    "Anh", "Chi", "Dung", "Giang", "Hà", "Hạnh", "Hằng", "Hoa", "Hương", "Huyền", "Lan",
    "Linh", "Loan", "Mai", "Ngân", "Ngọc", "Nhung", "Oanh", "Phương", "Quỳnh", "Tâm",
    "Thảo", "Thủy", "Trang", "Vân", "Yến", "Hiền", "Nga",
)  # fmt: skip
# Birth-place prefix of the 12-digit citizen id: mostly Hải Phòng, some neighbours.
BIRTH_PROVINCES = (("031", 85), ("030", 4), ("034", 3), ("022", 2), ("001", 2), ("033", 2),
                   ("036", 1), ("038", 1))  # fmt: skip

# The broken rows injected into the sample, two of each kind (see _inject_bad_row).
BAD_ROW_KINDS = (
    "unparseable_received",
    "impossible_date",
    "status_out_of_domain",
    "channel_out_of_domain",
    "missing_dossier_code",
    "wrong_field_count",
) * 2


@dataclass(frozen=True)
class Procedure:
    code: str
    name: str
    level: str
    processing_days: float
    day_type: str
    fee_vnd: int


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    level: str  # "commune" or "district": which procedures its desk receives
    agency_id: str  # the electronic id that prefixes its dossier codes
    mean_daily: float  # dossiers received on an ordinary working day
    file_format: str  # one of FILE_FORMATS
    with_seconds: bool

    @property
    def file_suffix(self) -> str:
        return ".xlsx" if self.file_format == XLSX else ".csv"


@dataclass(slots=True)
class Dossier:
    code: str
    unit: Unit
    procedure: Procedure
    channel: int
    received_at: datetime
    fee_vnd: int
    fee_dotted: bool
    paid_online: int
    digitized: int
    reused: int
    due_date_only: bool
    applicant_name: str
    applicant_id: str


@dataclass(frozen=True, slots=True)
class Change:
    """The state of a dossier right after one change; a file row is rendered from it."""

    updated_at: datetime
    status: int
    supplements: int = 0
    due_at: datetime | None = None
    finished_at: datetime | None = None
    returned_at: datetime | None = None
    e_result: int = 0
    apology_on: date | None = None


@dataclass
class Summary:
    sources_file: Path
    units: int = 0
    files: int = 0
    rows: int = 0
    dossiers: int = 0
    tasks: int = 0
    documents: int = 0
    bad_rows: list[dict] = field(default_factory=list)


class WorkCalendar:
    """Working days (weekends, public holidays, swapped days) and office-hour arithmetic."""

    def __init__(self, years: Iterable[int]):
        # The package knows lunar holidays, compensatory days and swaps such as
        # Saturday 26/4/2025 worked for Friday 2/5/2025; it adds later years on demand.
        self._holidays = holidays.country_holidays("VN", years=sorted(set(years)))
        self._working: dict[date, bool] = {}

    def is_working(self, day: date) -> bool:
        known = self._working.get(day)
        if known is None:
            known = self._working[day] = self._holidays.is_working_day(day)
        return known

    def next_working(self, day: date) -> date:
        """The first working day on or after `day`."""
        while not self.is_working(day):
            day += timedelta(days=1)
        return day

    def add_working_days(self, day: date, count: int) -> date:
        for _ in range(count):
            day = self.next_working(day + timedelta(days=1))
        return day

    def snap(self, moment: datetime) -> datetime:
        """The first office instant at or after `moment`: outside hours the clock waits."""
        day, clock = moment.date(), moment.time()
        if not self.is_working(day) or clock >= CLOSE:
            return datetime.combine(self.next_working(day + timedelta(days=1)), OPEN)
        if clock < OPEN:
            return datetime.combine(day, OPEN)
        if LUNCH_START <= clock < LUNCH_END:
            return datetime.combine(day, LUNCH_END)
        return moment

    def add_office_minutes(self, start: datetime, minutes: int) -> datetime:
        current, remaining = self.snap(start), timedelta(minutes=minutes)
        while True:
            session_end = LUNCH_START if current.time() < LUNCH_START else CLOSE
            available = datetime.combine(current.date(), session_end) - current
            if remaining <= available:
                return current + remaining
            remaining -= available
            current = self.snap(datetime.combine(current.date(), session_end))

    def legal_due(self, received_at: datetime, procedure: Procedure) -> datetime:
        """Received + the legal time; a working day is eight office hours (DOMAIN §2, §8)."""
        if procedure.day_type == "working":
            minutes = round(procedure.processing_days * OFFICE_MINUTES)
            return self.add_office_minutes(received_at, minutes)
        start = self.snap(received_at)
        due_day = start.date() + timedelta(days=math.ceil(procedure.processing_days))
        return datetime.combine(self.next_working(due_day), start.time())

    def office_time_on(
        self, rng: random.Random, day: date, after: datetime | None = None
    ) -> datetime | None:
        """A random office instant on a working `day`, later than `after`; None if none is left."""
        if not self.is_working(day):
            return None
        low = 0
        if after is not None and after.date() == day:
            low = _office_offset(after) + 1
        elif after is not None and after.date() > day:
            return None
        if low >= OFFICE_SECONDS:
            return None
        return _office_instant(day, rng.randrange(low, OFFICE_SECONDS))


def _office_offset(moment: datetime) -> int:
    """Seconds of office time elapsed on that day before `moment`."""
    seconds = moment.hour * 3600 + moment.minute * 60 + moment.second
    opening, lunch, reopening = 7 * 3600, 11 * 3600 + 1800, 13 * 3600 + 1800
    if seconds < opening:
        return 0
    if seconds < lunch:
        return seconds - opening
    if seconds < reopening:
        return MORNING_SECONDS
    return min(MORNING_SECONDS + seconds - reopening, OFFICE_SECONDS)


def _office_instant(day: date, offset: int) -> datetime:
    if offset < MORNING_SECONDS:
        return datetime.combine(day, OPEN) + timedelta(seconds=offset)
    return datetime.combine(day, LUNCH_END) + timedelta(seconds=offset - MORNING_SECONDS)


def load_catalogue(path: Path = CATALOGUE_PATH) -> list[Procedure]:
    """The procedure catalogue seed; codes stay text (`1.001190` is not `1.00119`)."""
    with path.open(encoding="utf-8", newline="") as handle:
        return [
            Procedure(
                code=row["procedure_code"],
                name=unicodedata.normalize("NFC", row["procedure_name"]),
                level=row["level"],
                processing_days=float(row["processing_days"]),
                day_type=row["day_type"],
                fee_vnd=int(row["fee_vnd"]),
            )
            for row in csv.DictReader(handle)
        ]


def district_units(district_code: str = DISTRICT_CODE) -> tuple[dict, list[dict]]:
    """The district and its communes as the shipped national list has them (never hand-typed)."""
    from vietnamadminunits.database import query

    if not re.fullmatch(r"\d{3}", district_code):
        raise ValueError(f"a district code has three digits: {district_code!r}")
    rows = query(
        "select provinceCode, province, districtCode, district, wardCode, ward, wardType "
        f"from admin_units_legacy where districtCode = '{district_code}' order by wardCode"
    )
    if not rows:
        raise ValueError(f"district {district_code} is not in the national list")
    first = rows[0]
    district = {
        "code": first["districtCode"],
        "name": unicodedata.normalize("NFC", first["district"]),
        "province_code": first["provinceCode"],
        "province_name": unicodedata.normalize("NFC", first["province"]),
    }
    communes = [
        {
            "code": row["wardCode"],
            "name": unicodedata.normalize("NFC", row["ward"]),
            "is_town": unicodedata.normalize("NFC", row["wardType"]) == "Thị trấn",
        }
        for row in rows
    ]
    return district, communes


def generate_district(
    out_dir: Path,
    *,
    seed: int = 2025,
    end: date = date(2025, 6, 30),
    days: int = 90,
    clean: bool = False,
) -> Path:
    """Write the sample district into out_dir and return the path of its sources.yml.

    `clean` leaves out the deliberately broken rows (a district whose data is all right).
    """
    return _generate(Path(out_dir), seed=seed, end=end, days=days, clean=clean).sources_file


def _generate(out_dir: Path, *, seed: int, end: date, days: int, clean: bool = False) -> Summary:
    if days < 1:
        raise ValueError("days must be at least 1")
    start = end - timedelta(days=days - 1)
    _prepare_output(out_dir)
    district, communes = district_units()
    catalogue = load_catalogue()
    calendar = WorkCalendar(range(start.year, end.year + 2))
    units = _build_units(seed, district, communes)

    summary = Summary(sources_file=out_dir / "sources.yml", units=len(units))
    _write_sources_file(summary.sources_file)
    _write_units_file(out_dir / "units.csv", district)

    bad_row_plan = {} if clean else _plan_bad_rows(seed, units, start, end, calendar)
    simulators = [
        _UnitSimulator(unit, catalogue, calendar, random.Random(f"{seed}:{unit.code}"), start, end)
        for unit in units
    ]
    for day in _days(start, end):
        for simulator in simulators:
            simulator.receive(day)
            changes = simulator.changes_on(day)
            if not changes:
                continue
            unit = simulator.unit
            rows = [_render(dossier, change, unit) for dossier, change in changes]
            relative = f"{SOURCE_FOLDER}/{unit.code}/{day.isoformat()}{unit.file_suffix}"
            kind = bad_row_plan.get((unit.code, day))
            if kind is not None:
                bad_rng = random.Random(f"{seed}:bad:{relative}")
                summary.bad_rows.append(_inject_bad_row(rows, kind, relative, bad_rng))
            write_dossier_file(out_dir / relative, rows, unit.file_format, _export_time(day))
            summary.files += 1
            summary.rows += len(rows)
    summary.dossiers = sum(simulator.dossier_count for simulator in simulators)

    tasks = _simulate_tasks(seed, district, communes, calendar, start, end)
    summary.tasks = len(tasks)
    summary.files += _write_task_files(out_dir / TASK_FOLDER, tasks, start, end)
    documents = [
        document
        for code, _ in [*DEPARTMENTS, *((c["code"], c["name"]) for c in communes)]
        for document in _simulate_documents(seed, code, calendar, start, end)
    ]
    summary.documents = len(documents)
    summary.files += _write_document_files(out_dir / DOCUMENT_FOLDER, documents)

    truth = out_dir / TRUTH_FOLDER
    truth.mkdir(parents=True, exist_ok=True)
    _write_json(truth / "bad_rows.json", summary.bad_rows)
    _write_json(truth / "formats.json", {unit.code: unit.file_format for unit in units})
    _write_json(truth / "tasks.json", [_task_truth(task, end) for task in tasks])
    return summary


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", "utf-8")


def _export_time(day: date) -> datetime:
    """When a desk exports its daily file: after closing time, so no change is missed."""
    return datetime.combine(day, time(17, 30))


def _prepare_output(out_dir: Path) -> None:
    """Replace an earlier sample in place; never touch a folder this generator did not write."""
    out_dir.mkdir(parents=True, exist_ok=True)
    truth_dir = out_dir / TRUTH_FOLDER
    ours = (truth_dir / "bad_rows.json").exists()
    folders = [out_dir / name for name in (SOURCE_FOLDER, TASK_FOLDER, DOCUMENT_FOLDER)]
    for folder in folders:
        if folder.exists() and any(folder.iterdir()) and not ours:
            raise FileExistsError(f"{folder} holds files the generator did not write")
    for folder in folders:
        if folder.exists():
            shutil.rmtree(folder)
    if truth_dir.exists():
        shutil.rmtree(truth_dir)


def _build_units(seed: int, district: dict, communes: list[dict]) -> list[Unit]:
    """The desks of the district. Agency ids (`H31.13` for the district desk, `H31.13.<commune>`
    for communes) are this sample's own pattern, stable per unit."""
    rng = random.Random(f"{seed}:units")
    units = []
    for index, commune in enumerate(communes):
        # Towns (thị trấn) are busier than rural communes.
        size = rng.uniform(5.0, 16.0) * (1.35 if commune["is_town"] else 1.0)
        units.append(
            Unit(
                code=commune["code"],
                name=commune["name"],
                level="commune",
                agency_id=f"H{district['province_code']}.13.{commune['code']}",
                mean_daily=size,
                # Desks run different software: a few export Excel, Windows-1258 or
                # decomposed Unicode; of the rest about one in four writes no BOM. One
                # in three writes times without seconds.
                file_format=SPECIAL_FORMATS.get(index, UTF8 if index % 4 == 1 else UTF8_BOM),
                with_seconds=index % 3 != 2,
            )
        )
    units.append(
        Unit(
            code=district["code"],
            name=district["name"],
            level="district",
            agency_id=f"H{district['province_code']}.13",
            mean_daily=rng.uniform(34.0, 42.0),
            file_format=UTF8_BOM,
            with_seconds=True,
        )
    )
    return units


class _UnitSimulator:
    """One desk: receives dossiers day by day and files each change under the day it happens."""

    def __init__(
        self,
        unit: Unit,
        catalogue: list[Procedure],
        calendar: WorkCalendar,
        rng: random.Random,
        start: date,
        end: date,
    ):
        self.unit = unit
        self.calendar = calendar
        self.rng = rng
        self.start, self.end = start, end
        self.procedures = [p for p in catalogue if p.level == unit.level]
        if not self.procedures:
            raise ValueError(f"the catalogue has no {unit.level}-level procedure")
        self.weights = [PROCEDURE_WEIGHTS.get(p.code, 1.0) for p in self.procedures]
        # day -> dossier code -> (dossier, its last change that day)
        self.pending: dict[date, dict[str, tuple[Dossier, Change]]] = {}
        self.dossier_count = 0

    def changes_on(self, day: date) -> list[tuple[Dossier, Change]]:
        changes = self.pending.pop(day, {})
        return sorted(changes.values(), key=lambda item: (item[1].updated_at, item[0].code))

    def receive(self, day: date) -> None:
        """Draw the dossiers received on `day` and schedule every change of their life."""
        arrivals = self._arrivals(day)
        for sequence, (received_at, channel) in enumerate(arrivals, start=1):
            dossier = self._new_dossier(day, sequence, received_at, channel)
            self.dossier_count += 1
            for change in self._life(dossier):
                change_day = change.updated_at.date()
                if self.start <= change_day <= self.end:
                    self.pending.setdefault(change_day, {})[dossier.code] = (dossier, change)

    def _arrivals(self, day: date) -> list[tuple[datetime, int]]:
        rng = self.rng
        if not self.calendar.is_working(day):
            # Desks are closed: only a few online submissions arrive.
            if self.unit.level == "district":
                count = rng.choice((0, 0, 1, 1, 2, 3))
            else:
                count = 1 if rng.random() < 0.12 else 0
            moments = [
                datetime.combine(
                    day, time(rng.randint(6, 22), rng.randint(0, 59), rng.randint(0, 59))
                )
                for _ in range(count)
            ]
            return sorted((moment, ONLINE) for moment in moments)

        weekday_factor = (1.15, 1.0, 1.0, 1.0, 0.9, 0.7, 0.7)[day.weekday()]
        mean = self.unit.mean_daily * weekday_factor
        low, high = (20, 60) if self.unit.level == "district" else (3, 25)
        count = min(high, max(low, round(rng.gauss(mean, mean * 0.3))))
        arrivals = []
        for _ in range(count):
            channel = rng.choices((DESK, ONLINE, POSTAL), weights=(60, 35, 5))[0]
            if channel == ONLINE and rng.random() < 0.06:
                # Submitted online after hours: the clock starts next working morning.
                hour = rng.choice((6, 17, 18, 19, 20, 21, 22))
                moment = datetime.combine(day, time(hour, rng.randint(0, 59), rng.randint(0, 59)))
            else:
                # Mornings are busier than afternoons at a one-stop desk.
                offset = (
                    rng.randrange(MORNING_SECONDS)
                    if rng.random() < 0.62
                    else rng.randrange(MORNING_SECONDS, OFFICE_SECONDS)
                )
                moment = _office_instant(day, offset)
            arrivals.append((moment, channel))
        return sorted(arrivals)

    def _new_dossier(
        self, day: date, sequence: int, received_at: datetime, channel: int
    ) -> Dossier:
        rng = self.rng
        procedure = rng.choices(self.procedures, weights=self.weights)[0]
        fee = procedure.fee_vnd
        if procedure.code == "2.000815" and fee:
            # Certified copies are charged per page: 2.000 đ for each of the first two,
            # 1.000 đ from the third (Thông tư 226/2016).
            pages = rng.choice((1, 2, 2, 2, 3, 4, 6))
            fee = 2000 * min(pages, 2) + 1000 * max(pages - 2, 0)
        paid_online = 0
        if channel == ONLINE and fee:
            paid_online = rng.choices((1, 2, 0), weights=(55, 25, 20))[0]
        online = channel == ONLINE
        return Dossier(
            code=f"{self.unit.agency_id}-{day:%y%m%d}-{sequence:04d}",
            unit=self.unit,
            procedure=procedure,
            channel=channel,
            received_at=received_at,
            fee_vnd=fee,
            fee_dotted=rng.random() < 0.5,
            paid_online=paid_online,
            digitized=int(rng.random() < (0.92 if online else 0.55)),
            reused=int(rng.random() < (0.45 if online else 0.2)),
            due_date_only=rng.random() < 0.12,
            **_applicant(rng),
        )

    def _life(self, dossier: Dossier) -> Iterator[Change]:
        """Every change of one dossier, in time order (DOMAIN §2)."""
        rng, calendar = self.rng, self.calendar
        procedure, received_at = dossier.procedure, dossier.received_at
        draw = rng.random()
        if dossier.channel == ONLINE and draw < 0.04:
            # Registered online and never accepted: no receipt, no due date.
            yield Change(received_at, REGISTERED)
            return
        if 0.04 <= draw < 0.05 and calendar.snap(received_at) == received_at:
            # Refused by the desk officer during office hours; appears once, never changes.
            yield Change(received_at, REFUSED)
            return

        # Office time the law allows; only used to pace the steps of the dossier.
        legal_minutes = round(procedure.processing_days * OFFICE_MINUTES)
        if procedure.day_type == "calendar":
            legal_minutes = math.ceil(procedure.processing_days) * OFFICE_MINUTES * 5 // 7
        due = calendar.legal_due(received_at, procedure)
        yield Change(received_at, RECEIVED, due_at=due)

        now = calendar.add_office_minutes(
            received_at, rng.randint(5, max(10, min(120, legal_minutes // 6)))
        )
        yield Change(now, PROCESSING, due_at=due)

        if 0.05 <= draw < 0.065:
            # Withdrawn by the citizen (7) or stopped (8) part-way through.
            status = WITHDRAWN if draw < 0.06 else STOPPED
            now = calendar.add_office_minutes(now, rng.randint(30, max(60, legal_minutes)))
            yield Change(now, status, due_at=due)
            return

        supplements = 0
        if rng.random() < (0.03 if procedure.processing_days <= 1 else 0.12):
            rounds = rng.choices((1, 2, 3), weights=(75, 20, 5))[0]
            for _ in range(rounds):
                now = calendar.add_office_minutes(now, rng.randint(30, max(60, legal_minutes // 3)))
                supplements += 1
                yield Change(now, SUPPLEMENT, supplements, due)
                # Waiting for the citizen stops the clock: the due date moves by the pause.
                pause = rng.randint(OFFICE_MINUTES, 6 * OFFICE_MINUTES)
                back = calendar.add_office_minutes(now, pause)
                if procedure.day_type == "working":
                    due = calendar.add_office_minutes(due, pause)
                else:
                    shifted = due.date() + (back.date() - now.date())
                    due = datetime.combine(calendar.next_working(shifted), due.time())
                now = back
                yield Change(now, PROCESSING, supplements, due)

        outcome = rng.choices(("early", "on_time", "late"), weights=(70, 19, 11))[0]
        # Early is impossible when the due date is today, and on time when no office
        # time is left today: fall back to the next outcome that can happen.
        finished = (
            self._finish_time(now, due, outcome)
            or self._finish_time(now, due, "on_time")
            or self._finish_time(now, due, "late")
        )

        apology_on = None
        if finished.date() > due.date() and rng.random() < 0.6:
            # An overdue dossier gets an apology letter before the due date passes.
            letter_day = calendar.add_working_days(now.date(), rng.randint(0, 2))
            letter_day = min(letter_day, due.date())
            letter_at = calendar.office_time_on(rng, letter_day, after=now)
            if letter_at is not None and letter_at < finished:
                now, apology_on = letter_at, letter_at.date()
                yield Change(now, PROCESSING, supplements, due, apology_on=apology_on)

        e_result = int(rng.random() < (0.85 if dossier.channel == ONLINE else 0.55))
        yield Change(finished, RESOLVED, supplements, due, finished, None, e_result, apology_on)

        if dossier.channel == ONLINE and e_result:
            returned = calendar.add_office_minutes(finished, rng.randint(1, 40))
        else:
            wait = rng.choices((0, 1, 2, 3, 5, 8), weights=(35, 30, 15, 10, 6, 4))[0]
            returned = calendar.office_time_on(
                rng, calendar.add_working_days(finished.date(), wait), after=finished
            ) or calendar.add_office_minutes(finished, rng.randint(5, 60))
        yield Change(returned, RETURNED, supplements, due, finished, returned, e_result, apology_on)

    def _finish_time(self, now: datetime, due: datetime, outcome: str) -> datetime | None:
        rng, calendar = self.rng, self.calendar
        if outcome == "early":
            candidates = []
            day = now.date()
            while day < due.date():
                if calendar.is_working(day):
                    candidates.append(day)
                day += timedelta(days=1)
            for _ in range(3):  # the chosen day may have no office time left after `now`
                if not candidates:
                    return None
                moment = calendar.office_time_on(rng, rng.choice(candidates), after=now)
                if moment is not None:
                    return moment
            return None
        if outcome == "on_time":
            return calendar.office_time_on(rng, due.date(), after=now)
        overdue_by = rng.choices((1, 2, 3, 4, 6), weights=(40, 25, 15, 10, 10))[0]
        late_day = calendar.add_working_days(max(due.date(), now.date()), overdue_by)
        return calendar.office_time_on(rng, late_day, after=now)


def _applicant(rng: random.Random) -> dict[str, str]:
    """A Vietnamese name and a matching 12-digit citizen id (CCCD)."""
    family = rng.choices([name for name, _ in FAMILY_NAMES], [w for _, w in FAMILY_NAMES])[0]
    female = rng.random() < 0.5
    if female:
        middle, given = rng.choice(FEMALE_MIDDLE), rng.choice(FEMALE_GIVEN)
    else:
        middle, given = rng.choice(MALE_MIDDLE), rng.choice(MALE_GIVEN)
    # The id is birth province (3 digits), sex and century (0/1 born 1900s, 2/3 born
    # 2000s; odd for women), birth year (2 digits) and six random digits.
    province = rng.choices([c for c, _ in BIRTH_PROVINCES], [w for _, w in BIRTH_PROVINCES])[0]
    born = rng.randint(1940, 2007)
    sex_century = (0 if born < 2000 else 2) + int(female)
    return {
        "applicant_name": unicodedata.normalize("NFC", f"{family} {middle} {given}"),
        "applicant_id": f"{province}{sex_century}{born % 100:02d}{rng.randrange(1_000_000):06d}",
    }


def _format_moment(moment: datetime | None, with_seconds: bool) -> str:
    if moment is None:
        return ""
    return moment.strftime("%d/%m/%Y %H:%M:%S" if with_seconds else "%d/%m/%Y %H:%M")


def _render(dossier: Dossier, change: Change, unit: Unit) -> list[str]:
    seconds = unit.with_seconds
    has_receipt = change.status not in (REGISTERED, REFUSED)
    if change.due_at is None:
        due = ""
    elif dossier.due_date_only:
        due = change.due_at.strftime("%d/%m/%Y")
    else:
        due = _format_moment(change.due_at, seconds)
    fee = f"{dossier.fee_vnd:,}".replace(",", ".") if dossier.fee_dotted else str(dossier.fee_vnd)
    return [
        dossier.code,
        unit.code,
        dossier.procedure.code,
        str(dossier.channel),
        _format_moment(dossier.received_at, seconds),
        due,
        _format_moment(change.finished_at, seconds),
        _format_moment(change.returned_at, seconds),
        str(change.status),
        str(change.supplements),
        fee,
        str(dossier.paid_online if has_receipt else 0),
        str(dossier.digitized if has_receipt else 0),
        str(change.e_result),
        str(dossier.reused if has_receipt else 0),
        change.apology_on.strftime("%d/%m/%Y") if change.apology_on else "",
        dossier.applicant_name,
        dossier.applicant_id,
        _format_moment(change.updated_at, seconds),
    ]


def _plan_bad_rows(
    seed: int, units: list[Unit], start: date, end: date, calendar: WorkCalendar
) -> dict[tuple[str, date], str]:
    """Which files receive a broken row: distinct working-day files, one kind each.

    A row of the wrong width only exists in a CSV file (a sheet is a grid). The first
    kinds go to a workbook, a Windows-1258 file and an NFD file, so that quarantine is
    exercised on every format of the sample.
    """
    rng = random.Random(f"{seed}:bad-rows")
    working_days = [day for day in _days(start, end) if calendar.is_working(day)]
    formats = {unit.code: unit.file_format for unit in units}
    slots = sorted((unit.code, day) for unit in units for day in working_days)
    preferred = {0: XLSX, 1: WINDOWS_1258, 2: UTF8_NFD}  # position in BAD_ROW_KINDS -> format
    plan: dict[tuple[str, date], str] = {}
    for position, kind in enumerate(BAD_ROW_KINDS):
        free = [slot for slot in slots if slot not in plan]
        if kind == "wrong_field_count":
            free = [slot for slot in free if formats[slot[0]] != XLSX]
        elif position in preferred:
            free = [slot for slot in free if formats[slot[0]] == preferred[position]] or free
        if not free:
            break
        plan[rng.choice(free)] = kind
    return plan


def _inject_bad_row(rows: list[list[str]], kind: str, relative: str, rng: random.Random) -> dict:
    """Insert one extra broken row; the good rows (and so every dossier) stay intact."""
    bad = list(rng.choice(rows))
    # A fresh sequence number, so the broken row never shadows a real dossier.
    bad[COLUMN["Mã hồ sơ"]] = (
        f"{bad[COLUMN['Mã hồ sơ']].rsplit('-', 1)[0]}-{rng.randint(9000, 9999)}"
    )
    column: str | None
    if kind == "unparseable_received":
        column, value, problem = "Ngày tiếp nhận", "abc", "unparseable date"
    elif kind == "impossible_date":
        column, problem = "Ngày tiếp nhận", "impossible date"
        value = "31/02/2025 " + (bad[COLUMN[column]][11:] or "08:00")
    elif kind == "status_out_of_domain":
        column, value, problem = "Trạng thái", "11", "status outside 1-10"
    elif kind == "channel_out_of_domain":
        column, value, problem = "Kênh nộp", "9", "channel outside 1-3"
    elif kind == "missing_dossier_code":
        column, value, problem = "Mã hồ sơ", "", "missing dossier code"
    else:
        column, problem = None, "wrong number of fields"
        bad = bad[:-1] if rng.random() < 0.5 else [*bad, bad[-1]]
        value = f"{len(bad)} fields"
    if column is not None:
        bad[COLUMN[column]] = value
    position = rng.randint(0, len(rows))
    rows.insert(position, bad)
    return {
        "file": relative,
        "row": position + 2,  # as a spreadsheet shows it: the header is row 1
        "column": column,
        "value": value,
        "problem": problem,
    }


def write_dossier_file(
    path: Path, rows: list[list[str]], file_format: str, exported_at: datetime
) -> None:
    """One daily export (header + rows of NFC text) in a desk's file format.

    `exported_at` stamps the workbook's properties and zip entries, never the clock:
    the same rows always give the same bytes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if file_format == XLSX:
        path.write_bytes(xlsx_bytes(HEADERS, rows, exported_at, numeric=NUMERIC_COLUMNS))
    else:
        path.write_bytes(csv_bytes(HEADERS, rows, file_format))


def csv_bytes(headers: Iterable[str], rows: Iterable[list[str]], file_format: str) -> bytes:
    """A CSV file as a desk's software encodes it (CONTRACTS §1a)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(headers)
    writer.writerows(rows)
    text = buffer.getvalue()
    if file_format == UTF8_BOM:
        return text.encode("utf-8-sig")
    if file_format == UTF8:
        return text.encode("utf-8")
    if file_format == UTF8_NFD:
        return unicodedata.normalize("NFD", text).encode("utf-8")
    if file_format == WINDOWS_1258:
        return windows_1258_text(text).encode("cp1258")
    raise ValueError(f"not a CSV format: {file_format!r}")


def windows_1258_text(text: str) -> str:
    """The same text in the form Windows-1258 can encode.

    The code page has precomposed letters for the vowel shapes (â, ê, ô, ơ, ư, ă, đ)
    and for a few toned vowels (à, á, è, ...), and combining marks for the five tones.
    Each letter keeps its precomposed form when the code page has it; otherwise the base
    letter is composed with whichever of its marks gives an encodable letter, and the
    other marks follow as combining characters: `ệ` becomes `ê` + combining dot below.
    """
    return "".join([_windows_1258_letter(char) for char in unicodedata.normalize("NFC", text)])


@functools.cache
def _windows_1258_letter(char: str) -> str:
    if _in_windows_1258(char):
        return char
    base, *marks = unicodedata.normalize("NFD", char)
    for position, mark in enumerate(marks):
        composed = unicodedata.normalize("NFC", base + mark)
        if len(composed) == 1 and _in_windows_1258(composed):
            return composed + "".join(marks[:position] + marks[position + 1 :])
    return base + "".join(marks)


def _in_windows_1258(char: str) -> bool:
    try:
        char.encode("cp1258")
    except UnicodeEncodeError:
        return False
    return True


def xlsx_bytes(
    headers: Iterable[str],
    rows: Iterable[list[str]],
    exported_at: datetime,
    numeric: frozenset[int] = frozenset(),
) -> bytes:
    """An Excel workbook whose first sheet holds the header and the rows.

    Dates, codes and names are text cells, exactly as the CSV would hold them (a code
    such as `1.001193` or `031090123456` never becomes a number). Columns listed in
    `numeric` hold whole numbers as number cells, as spreadsheet exports do; anything
    else in them (`50.000`, a broken value) stays text.
    """
    from openpyxl import Workbook
    from openpyxl.writer.excel import ExcelWriter

    headers = list(headers)
    workbook = Workbook(write_only=True)
    workbook.properties.creator = "Một cửa điện tử"
    workbook.properties.created = workbook.properties.modified = exported_at
    sheet = workbook.create_sheet("Danh sách")
    sheet.append(headers)
    for row in rows:
        if len(row) != len(headers):
            raise ValueError("a sheet row has exactly one cell per header")
        sheet.append([_sheet_cell(value, index in numeric) for index, value in enumerate(row)])
    buffer = io.BytesIO()
    ExcelWriter(workbook, _StampedZip(buffer, exported_at)).save()  # closes the archive
    return buffer.getvalue()


def _sheet_cell(value: str, numeric: bool) -> str | int | None:
    if value == "":
        return None
    if numeric and value.isascii() and value.isdigit() and len(value) < 10:
        return int(value)
    return value


class _StampedZip(ZipFile):
    """A zip archive whose entries all carry one given time instead of the clock's."""

    def __init__(self, file, stamp: datetime):
        super().__init__(file, "w", ZIP_DEFLATED)
        self._stamp = stamp.timetuple()[:6]

    def writestr(self, zinfo_or_arcname, data, compress_type=None, compresslevel=None):
        if not isinstance(zinfo_or_arcname, ZipInfo):
            zinfo_or_arcname = ZipInfo(zinfo_or_arcname, date_time=self._stamp)
            zinfo_or_arcname.compress_type = ZIP_DEFLATED
            zinfo_or_arcname.external_attr = 0o600 << 16
        super().writestr(zinfo_or_arcname, data, compress_type, compresslevel)

    def write(self, filename, arcname=None, compress_type=None, compresslevel=None):
        # openpyxl writes each worksheet to a temporary file first; its mtime is the clock.
        self.writestr(arcname or Path(filename).name, Path(filename).read_bytes())


def _write_sources_file(path: Path) -> None:
    path.write_text(
        "units: units.csv\n"
        "sources:\n"
        f"  - name: {SOURCE_NAME}\n"
        "    kind: dossier_files\n"
        f"    path: {SOURCE_FOLDER}\n"
        f"  - name: {TASK_SOURCE_NAME}\n"
        "    kind: task_files\n"
        f"    path: {TASK_FOLDER}\n"
        f"  - name: {DOCUMENT_SOURCE_NAME}\n"
        "    kind: document_files\n"
        f"    path: {DOCUMENT_FOLDER}\n",
        encoding="utf-8",
    )


def _write_units_file(path: Path, district: dict) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("unit_code", "unit_name", "unit_type", "parent_unit_code"))
        # The district is in the shipped list already: registering it again is harmless
        # and shows that a registered row of a shipped code is the same unit.
        writer.writerow((district["code"], district["name"], "district", district["province_code"]))
        for code, name in DEPARTMENTS:
            writer.writerow(
                (code, unicodedata.normalize("NFC", name), "department", district["code"])
            )


# --- Tasks assigned to the departments (CONTRACTS §1c, DOMAIN §5) ---------------------

TASK_TOPICS = {
    "TNMT": (
        "Rà soát, cập nhật biến động đất đai trên địa bàn {place}",
        "Báo cáo kết quả cấp Giấy chứng nhận quyền sử dụng đất {period}",
        "Kiểm tra, xử lý vi phạm pháp luật về đất đai tại {place}",
        "Giải quyết đơn kiến nghị của công dân {place} về tranh chấp đất đai",
        "Xây dựng kế hoạch sử dụng đất năm {next_year} của huyện",
        "Báo cáo công tác bảo vệ môi trường {period}",
        "Kiểm tra việc thu gom, xử lý rác thải sinh hoạt tại {place}",
        "Đẩy nhanh tiến độ bồi thường, giải phóng mặt bằng các dự án tại {place}",
    ),
    "KTHT": (
        "Kiểm tra trật tự xây dựng trên địa bàn {place}",
        "Báo cáo tình hình cấp giấy phép xây dựng {period}",
        "Rà soát hệ thống chiếu sáng công cộng trên các tuyến đường huyện",
        "Kiểm tra công tác phòng, chống thiên tai năm {year} tại {place}",
        "Đôn đốc tiến độ thi công công trình nhà văn hóa {place}",
        "Báo cáo kết quả xây dựng nông thôn mới nâng cao {period}",
        "Tham mưu phương án bảo đảm an toàn giao thông trên địa bàn huyện {period}",
    ),
    "TCKH": (
        "Xây dựng dự toán ngân sách năm {next_year}",
        "Báo cáo tình hình thực hiện dự toán thu, chi ngân sách {period}",
        "Thẩm tra quyết toán vốn đầu tư công trình hoàn thành tại {place}",
        "Rà soát hộ kinh doanh đã đăng ký nhưng ngừng hoạt động tại {place}",
        "Báo cáo tình hình giải ngân vốn đầu tư công {period}",
        "Tham mưu bố trí kinh phí thực hiện nhiệm vụ cải cách hành chính năm {year}",
    ),
    "NV": (
        "Báo cáo kết quả công tác cải cách hành chính {period}",
        "Kiểm tra công tác cải cách hành chính, kỷ luật, kỷ cương hành chính tại {place}",
        "Xây dựng kế hoạch đào tạo, bồi dưỡng cán bộ, công chức năm {next_year}",
        "Báo cáo công tác thi đua, khen thưởng {period}",
        "Tổng hợp kết quả khảo sát sự hài lòng của người dân {period}",
        "Rà soát hồ sơ trễ hạn và việc gửi thư xin lỗi công dân {period}",
        "Rà soát, thống kê số lượng cán bộ, công chức cấp xã",
    ),
}
TASK_TOPICS_SHARED = (
    "Báo cáo tình hình thực hiện nhiệm vụ được giao {period}",
    "Cung cấp số liệu phục vụ báo cáo tình hình kinh tế - xã hội {period}",
)
# Share of tasks a department finishes after the deadline: land administration lags.
TASK_LATE_SHARE = {"TNMT": 0.3, "KTHT": 0.2, "TCKH": 0.12, "NV": 0.08}
ROMAN = ("I", "II", "III", "IV")


@dataclass
class Task:
    task_id: str
    summary: str
    assigned_by: str
    department_code: str
    assigned_on: date
    # Each change, in time order: (updated_at, deadline, completed_on or None).
    states: list[tuple[datetime, date, date | None]]


def _simulate_tasks(
    seed: int,
    district: dict,
    communes: list[dict],
    calendar: WorkCalendar,
    start: date,
    end: date,
) -> list[Task]:
    """Tasks given to each department on working days, about 5-15 a month each."""
    rng = random.Random(f"{seed}:tasks")
    assigners = ("UBND " + _lower_first(district["province_name"]),
                 "UBND " + _lower_first(district["name"]))  # fmt: skip
    places = [_lower_first(commune["name"]) for commune in communes]
    monthly = {code: rng.uniform(6.0, 13.0) for code, _ in DEPARTMENTS}
    # The tracker numbers tasks per year; the sample starts part-way through one.
    before = (start - date(start.year, 1, 1)).days * sum(monthly.values()) / 30.4
    next_number = {start.year: 1 + round(before)}
    tasks = []
    for day in _days(start, end):
        if not calendar.is_working(day):
            continue
        for code, _ in DEPARTMENTS:
            expected = monthly[code] / 21.5  # working days in a month
            for _ in range(int(expected) + (rng.random() < expected % 1)):
                number = next_number.setdefault(day.year, 1)
                next_number[day.year] = number + 1
                assigned_by = assigners[0] if rng.random() < 0.3 else assigners[1]
                task_id = f"NV-{day.year}-{number:04d}"
                tasks.append(_new_task(rng, calendar, code, day, task_id, assigned_by, places))
    return tasks


def _new_task(
    rng: random.Random,
    calendar: WorkCalendar,
    department_code: str,
    day: date,
    task_id: str,
    assigned_by: str,
    places: list[str],
) -> Task:
    department = department_code.split("-", 1)[1]
    topic = rng.choice(TASK_TOPICS[department] + TASK_TOPICS_SHARED)
    quarter = (day.month - 1) // 3
    period = rng.choice(
        (
            f"tháng {day.month} năm {day.year}",
            f"quý {ROMAN[quarter]} năm {day.year}",
            f"{'6 tháng đầu' if day.month <= 6 else '9 tháng'} năm {day.year}",
        )
    )
    summary = topic.format(
        place=rng.choice(places), period=period, year=day.year, next_year=day.year + 1
    )
    assigned_at = calendar.office_time_on(rng, day) or datetime.combine(day, OPEN)
    span = rng.choices((3, 5, 7, 10, 15, 20, 30, 45), weights=(8, 18, 18, 20, 14, 10, 8, 4))[0]
    deadline = calendar.add_working_days(day, span)
    states: list[tuple[datetime, date, date | None]] = [(assigned_at, deadline, None)]
    now = assigned_at
    if span >= 10 and rng.random() < 0.06:
        # The department asked for more time before the deadline, and got it.
        asked_on = calendar.add_working_days(day, rng.randint(span // 2, span - 1))
        now = calendar.office_time_on(rng, asked_on) or now
        deadline = calendar.add_working_days(deadline, rng.randint(5, 15))
        states.append((now, deadline, None))

    draw = rng.random()
    if draw < 0.04:
        return Task(task_id, summary, assigned_by, department_code, day, states)  # stalled
    if draw < 0.04 + TASK_LATE_SHARE[department]:
        overdue_by = rng.choices((1, 2, 3, 5, 8, 13, 21), weights=(20, 18, 15, 15, 12, 10, 10))[0]
        done_on = calendar.add_working_days(deadline, overdue_by)
    else:
        # Most tasks are done in the last days before the deadline.
        done_on, early_by = deadline, rng.choices((0, 1, 2, 3, 5, 8), (30, 25, 15, 12, 10, 8))[0]
        for _ in range(early_by):
            before = done_on - timedelta(days=1)
            while not calendar.is_working(before):
                before -= timedelta(days=1)
            if before < now.date():
                break
            done_on = before
    done_at = calendar.office_time_on(rng, done_on, after=now)
    if done_at is None:  # no office time left that day
        done_at = calendar.add_office_minutes(now, rng.randint(10, 60))
    states.append((done_at, deadline, done_at.date()))
    return Task(task_id, summary, assigned_by, department_code, day, states)


def _lower_first(name: str) -> str:
    """`Huyện An Lão` -> `huyện An Lão`, as the name reads after `UBND`."""
    return name[:1].lower() + name[1:]


def _write_task_files(folder: Path, tasks: list[Task], start: date, end: date) -> int:
    """One file per day with every task assigned or changed that day (its state at export)."""
    by_day: dict[date, dict[str, list[str]]] = {}
    order: dict[date, dict[str, datetime]] = {}
    for task in tasks:
        for updated_at, deadline, completed_on in task.states:
            day = updated_at.date()
            if not start <= day <= end:
                continue
            by_day.setdefault(day, {})[task.task_id] = [
                task.task_id,
                task.summary,
                task.assigned_by,
                task.department_code,
                task.assigned_on.strftime("%d/%m/%Y"),
                deadline.strftime("%d/%m/%Y"),
                completed_on.strftime("%d/%m/%Y") if completed_on else "",
                updated_at.strftime("%d/%m/%Y %H:%M:%S"),
            ]
            order.setdefault(day, {})[task.task_id] = updated_at
    for day, rows in by_day.items():
        ranked = sorted(rows, key=lambda task_id: (order[day][task_id], task_id))
        path = folder / f"{day.isoformat()}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(csv_bytes(TASK_HEADERS, [rows[key] for key in ranked], UTF8_BOM))
    return len(by_day)


def _task_truth(task: Task, as_of: date) -> dict:
    """A task's last state written by `as_of` and its outcome then (DOMAIN §5)."""
    _, deadline, completed_on = [s for s in task.states if s[0].date() <= as_of][-1]
    if completed_on is not None:
        outcome = "done_on_time" if completed_on <= deadline else "done_late"
    else:
        outcome = "open_overdue" if deadline < as_of else "open_on_time"
    return {
        "task_id": task.task_id,
        "department_code": task.department_code,
        "assigned_on": task.assigned_on.isoformat(),
        "deadline_on": deadline.isoformat(),
        "completed_on": completed_on.isoformat() if completed_on else None,
        "as_of": as_of.isoformat(),
        "outcome": outcome,
    }


# --- Outgoing documents of departments and communes (CONTRACTS §1d, DOMAIN §6) ---------

# Document kinds and how often each is issued; None is an official letter (công văn),
# whose number carries no kind: `123/UBND`, `45/TNMT`.
COMMUNE_DOCUMENT_KINDS = ((None, 45), ("QĐ", 20), ("BC", 12), ("TB", 8), ("KH", 6),
                          ("TTr", 5), ("GM", 4))  # fmt: skip
DEPARTMENT_DOCUMENT_KINDS = ((None, 50), ("BC", 18), ("TTr", 15), ("KH", 6), ("TB", 6),
                             ("GM", 5))  # fmt: skip


@dataclass(frozen=True)
class Document:
    number: str
    unit_code: str
    issued_on: date
    signed: int


def _simulate_documents(
    seed: int, unit_code: str, calendar: WorkCalendar, start: date, end: date
) -> list[Document]:
    """What one unit issues on working days, numbered from 01 each year (Decree 30/2020)."""
    rng = random.Random(f"{seed}:documents:{unit_code}")
    department = "-" in unit_code
    issuer = unit_code.split("-", 1)[1] if department else "UBND"
    kinds = DEPARTMENT_DOCUMENT_KINDS if department else COMMUNE_DOCUMENT_KINDS
    names, weights = [kind for kind, _ in kinds], [weight for _, weight in kinds]
    mean = rng.uniform(2.5, 6.0) if department else rng.uniform(1.5, 4.5)
    signed_share = rng.uniform(0.84, 0.96)
    # The sample starts part-way through a year: the register is already running.
    elapsed = sum(
        calendar.is_working(day) for day in _days(date(start.year, 1, 1), start - timedelta(days=1))
    )
    number = round(elapsed * mean * rng.uniform(0.9, 1.1))
    year, documents = start.year, []
    for day in _days(start, end):
        if day.year != year:
            year, number = day.year, 0
        if not calendar.is_working(day):
            continue
        for _ in range(max(0, round(rng.gauss(mean, mean * 0.5)))):
            number += 1
            kind = rng.choices(names, weights)[0]
            text = f"{number:02d}/{issuer}" if kind is None else f"{number:02d}/{kind}-{issuer}"
            documents.append(Document(text, unit_code, day, int(rng.random() < signed_share)))
    return documents


def _write_document_files(folder: Path, documents: list[Document]) -> int:
    by_file: dict[tuple[str, date], list[list[str]]] = {}
    for document in documents:
        by_file.setdefault((document.unit_code, document.issued_on), []).append(
            [
                document.number,
                document.unit_code,
                document.issued_on.strftime("%d/%m/%Y"),
                str(document.signed),
            ]
        )
    for (unit_code, day), rows in by_file.items():
        path = folder / unit_code / f"{day.isoformat()}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(csv_bytes(DOCUMENT_HEADERS, rows, UTF8_BOM))
    return len(by_file)


def _days(start: date, end: date) -> Iterator[date]:
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


app = typer.Typer(help="Generate sample inputs")


@app.callback()
def _main() -> None:
    """Generate sample inputs."""


@app.command("district")
def district_command(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the sample district into")],
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same files")] = 2025,
    end: Annotated[str, typer.Option("--end", help="Last day, YYYY-MM-DD")] = "2025-06-30",
    days: Annotated[int, typer.Option("--days", help="Calendar days ending at --end")] = 90,
    clean: Annotated[bool, typer.Option("--clean", help="No deliberately broken rows")] = False,
) -> None:
    """Write An Lão district: daily dossier logs of its desks, tasks and outgoing documents."""
    try:
        last_day = date.fromisoformat(end)
    except ValueError as error:
        raise typer.BadParameter(f"not a YYYY-MM-DD date: {end!r}", param_hint="--end") from error
    if days < 1:
        raise typer.BadParameter("must be at least 1", param_hint="--days")
    try:
        summary = _generate(out, seed=seed, end=last_day, days=days, clean=clean)
    except FileExistsError as error:
        raise typer.BadParameter(str(error), param_hint="--out") from error
    first_day = last_day - timedelta(days=days - 1)
    typer.echo(
        f"Wrote {summary.files} daily files: {summary.rows} dossier rows ({summary.dossiers} "
        f"dossiers, {len(summary.bad_rows)} deliberately broken rows) for {summary.units} desks, "
        f"{summary.tasks} department tasks and {summary.documents} outgoing documents, "
        f"{first_day.isoformat()} to {last_day.isoformat()}, into {out}"
    )
    typer.echo(f"Sources file: {summary.sources_file}")
    typer.echo(f"Broken rows listed in: {out / TRUTH_FOLDER / 'bad_rows.json'}")


@app.command("dossiers")
def dossiers_command(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the dossier files into")],
    dossiers: Annotated[int, typer.Option("--dossiers", help="How many dossiers, exactly")],
    units: Annotated[int, typer.Option("--units", help="Communes of the national list")] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same files")] = 2025,
    start: Annotated[str, typer.Option("--start", help="First day, YYYY-MM-DD")] = "2024-01-01",
    end: Annotated[str, typer.Option("--end", help="Last day, YYYY-MM-DD")] = "2024-12-31",
    formats: Annotated[
        str, typer.Option("--formats", help="csv (UTF-8) or mixed (BOM, NFD, Windows-1258)")
    ] = "csv",
    single_file: Annotated[
        bool, typer.Option("--single-file", help="All rows in one file, <out>/all.csv")
    ] = False,
) -> None:
    """Write many dossiers fast, for benchmarks: daily files per unit, or one big file."""
    from flows import simulate_scale

    days = {}
    for hint, text in (("--start", start), ("--end", end)):
        try:
            days[hint] = date.fromisoformat(text)
        except ValueError as error:
            raise typer.BadParameter(f"not a YYYY-MM-DD date: {text!r}", param_hint=hint) from error
    try:
        summary = simulate_scale._generate_dossiers(
            out,
            dossiers=dossiers,
            seed=seed,
            units=units,
            start=days["--start"],
            end=days["--end"],
            formats=formats,
            single_file=single_file,
        )
    except (ValueError, FileExistsError) as error:
        raise typer.BadParameter(str(error)) from error
    typer.echo(
        f"Wrote {summary.rows:,} rows ({summary.dossiers:,} dossiers) in {summary.files:,} "
        f"files, {summary.bytes / 1e6:,.1f} MB, in {summary.seconds:.1f} s: "
        f"{summary.rows_per_second:,.0f} rows/s"
    )
    typer.echo(f"Output: {summary.path}")


if __name__ == "__main__":
    app()
