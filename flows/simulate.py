"""Generate a realistic sample district: An Lão (Hải Phòng), its communes and its one-stop desk.

The output looks like what one-stop desks really export (CONTRACTS §1a): one CSV per
unit per day holding every dossier created or changed that day, so a dossier shows up
again each time its status moves on. A handful of broken rows is mixed in, and listed
in `_truth/bad_rows.json`, so that tests know exactly what must be quarantined.

Everything is drawn from `random.Random` seeded per unit: the same options always
give byte-identical files, and nothing depends on the clock.
"""

from __future__ import annotations

import csv
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

import holidays
import typer

DISTRICT_CODE = "313"  # Huyện An Lão, Thành phố Hải Phòng
CATALOGUE_PATH = Path(__file__).resolve().parents[1] / "dbt_project" / "seeds" / "procedures.csv"
SOURCE_NAME = "xa_an_lao"
SOURCE_FOLDER = "communes"
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
    with_bom: bool
    with_seconds: bool


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
        "select provinceCode, districtCode, district, wardCode, ward, wardType "
        f"from admin_units_legacy where districtCode = '{district_code}' order by wardCode"
    )
    if not rows:
        raise ValueError(f"district {district_code} is not in the national list")
    first = rows[0]
    district = {
        "code": first["districtCode"],
        "name": unicodedata.normalize("NFC", first["district"]),
        "province_code": first["provinceCode"],
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
    out_dir: Path, *, seed: int = 2025, end: date = date(2025, 6, 30), days: int = 90
) -> Path:
    """Write the sample district into out_dir and return the path of its sources.yml."""
    return _generate(Path(out_dir), seed=seed, end=end, days=days).sources_file


def _generate(out_dir: Path, *, seed: int, end: date, days: int) -> Summary:
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

    bad_row_plan = _plan_bad_rows(seed, units, start, end, calendar)
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
            rows = [_render(dossier, change, simulator.unit) for dossier, change in changes]
            relative = f"{SOURCE_FOLDER}/{simulator.unit.code}/{day.isoformat()}.csv"
            kind = bad_row_plan.get((simulator.unit.code, day))
            if kind is not None:
                bad_rng = random.Random(f"{seed}:bad:{relative}")
                summary.bad_rows.append(_inject_bad_row(rows, kind, relative, bad_rng))
            _write_day_file(out_dir / relative, rows, simulator.unit.with_bom)
            summary.files += 1
            summary.rows += len(rows)
    summary.dossiers = sum(simulator.dossier_count for simulator in simulators)

    truth = out_dir / TRUTH_FOLDER / "bad_rows.json"
    truth.parent.mkdir(parents=True, exist_ok=True)
    truth.write_text(json.dumps(summary.bad_rows, ensure_ascii=False, indent=2) + "\n", "utf-8")
    return summary


def _prepare_output(out_dir: Path) -> None:
    """Replace an earlier sample in place; never touch a folder this generator did not write."""
    out_dir.mkdir(parents=True, exist_ok=True)
    source_dir, truth_dir = out_dir / SOURCE_FOLDER, out_dir / TRUTH_FOLDER
    if source_dir.exists():
        if any(source_dir.iterdir()) and not (truth_dir / "bad_rows.json").exists():
            raise FileExistsError(f"{source_dir} holds files the generator did not write")
        shutil.rmtree(source_dir)
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
                # Desks run different software: about one in four exports without a BOM,
                # one in three writes times without seconds.
                with_bom=index % 4 != 1,
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
            with_bom=True,
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
    """Which files receive a broken row: distinct working-day files, one kind each."""
    rng = random.Random(f"{seed}:bad-rows")
    working_days = [day for day in _days(start, end) if calendar.is_working(day)]
    slots = sorted({(unit.code, day) for unit in units for day in working_days})
    chosen = rng.sample(slots, min(len(BAD_ROW_KINDS), len(slots)))
    return {slot: kind for slot, kind in zip(sorted(chosen), BAD_ROW_KINDS, strict=False)}


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


def _write_day_file(path: Path, rows: list[list[str]], with_bom: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig" if with_bom else "utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADERS)
        writer.writerows(rows)


def _write_sources_file(path: Path) -> None:
    path.write_text(
        "units: units.csv\n"
        "sources:\n"
        f"  - name: {SOURCE_NAME}\n"
        "    kind: dossier_files\n"
        f"    path: {SOURCE_FOLDER}\n",
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
) -> None:
    """Write An Lão district: its communes and the district desk, with daily dossier logs."""
    try:
        last_day = date.fromisoformat(end)
    except ValueError as error:
        raise typer.BadParameter(f"not a YYYY-MM-DD date: {end!r}", param_hint="--end") from error
    if days < 1:
        raise typer.BadParameter("must be at least 1", param_hint="--days")
    try:
        summary = _generate(out, seed=seed, end=last_day, days=days)
    except FileExistsError as error:
        raise typer.BadParameter(str(error), param_hint="--out") from error
    first_day = last_day - timedelta(days=days - 1)
    typer.echo(
        f"Wrote {summary.files} daily files ({summary.rows} rows, {summary.dossiers} dossiers, "
        f"{len(summary.bad_rows)} deliberately broken rows) for {summary.units} units, "
        f"{first_day.isoformat()} to {last_day.isoformat()}, into {out}"
    )
    typer.echo(f"Sources file: {summary.sources_file}")
    typer.echo(f"Broken rows listed in: {out / TRUTH_FOLDER / 'bad_rows.json'}")


if __name__ == "__main__":
    app()
