"""Many dossiers, fast: benchmark inputs in the dossier-file format (CONTRACTS §1a).

`flows.simulate` models one district carefully (office hours, holidays, each step of a
dossier's life); this module trades that detail for volume. It writes millions of rows
for hundreds of real communes, one day at a time, keeping in memory only the changes
still to come: memory follows the daily volume, never the total.

Each dossier appears one to three times in the change log: the day it is received, on
some later day while it is being processed, and the day it is finished. Rows are built
as plain strings from precomputed tables (dates, clock times, names, weighted choices)
and one `random.Random`, so a seed always gives the same bytes.

The same rows can be written as the contract's layout (`<out>/dossiers/<unit>/<date>.csv`)
or as one file (`<out>/all.csv`, the rows of every daily file in day then unit order,
under one header), so that a benchmark can compare loading the files with a plain
`\\copy` of the same rows.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from flows import simulate

DEFAULT_START, DEFAULT_END = date(2024, 1, 1), date(2024, 12, 31)
SOURCE_NAME, SOURCE_FOLDER, SINGLE_FILE = "ho_so_xa", "dossiers", "all.csv"
TRUTH_FILE = Path(simulate.TRUTH_FOLDER) / "scale.json"
FORMATS = ("csv", "mixed")
OFFICE_SECONDS = simulate.OFFICE_SECONDS
HORIZON_DAYS = 150  # due dates and late finishes beyond the last day still need a date

# Size of the precomputed tables; each is indexed by a slice of random bits.
PROCEDURE_BITS, NAME_BITS, ID_BITS = 10, 12, 10

# A dossier's life: how many times it shows up in the log, and how (weights in 1/128).
# Procedures of a day or less are mostly settled the day they are received.
SAME_DAY, REFUSED, REGISTERED, TWO_DAYS, THREE_DAYS = range(5)
SHORT_LIVES = ((SAME_DAY, 48), (REFUSED, 4), (REGISTERED, 4), (TWO_DAYS, 52), (THREE_DAYS, 20))
LONG_LIVES = ((SAME_DAY, 4), (REFUSED, 4), (REGISTERED, 4), (TWO_DAYS, 56), (THREE_DAYS, 60))
# How it ends when it takes more than a day (weights in 1/64).
FINAL_STATUSES = ((simulate.RETURNED, 54), (simulate.RESOLVED, 5), (simulate.WITHDRAWN, 3),
                  (simulate.STOPPED, 2))  # fmt: skip
EARLY, ON_TIME, LATE = range(3)
OUTCOMES = ((EARLY, 90), (ON_TIME, 24), (LATE, 14))  # weights in 1/128
CHANNELS = ((simulate.DESK, 77), (simulate.ONLINE, 45), (simulate.POSTAL, 6))  # 1/128
WEEKDAY_WEIGHTS = (1.15, 1.0, 1.0, 1.0, 0.9, 0.7, 0.7)  # a worked Saturday is quieter
CLOSED_DAY_WEIGHT = 0.04  # online submissions on weekends and holidays


@dataclass
class ScaleSummary:
    path: Path
    dossiers: int = 0
    rows: int = 0
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def generate_dossiers(
    out_dir: Path,
    *,
    dossiers: int,
    seed: int = 2025,
    units: int = 200,
    start: date = DEFAULT_START,
    end: date = DEFAULT_END,
    formats: str = "csv",
    single_file: bool = False,
) -> Path:
    """Write `dossiers` dossiers received from `start` to `end` at `units` communes.

    Returns the sources file of the daily files (`<out>/sources.yml`), or with
    `single_file` the one file holding them all (`<out>/all.csv`). `formats="csv"`
    writes UTF-8 without a BOM everywhere; `"mixed"` gives some units a BOM, some
    Windows-1258 and some decomposed Unicode, as real desks do (per-unit layout only).
    """
    return _generate_dossiers(
        Path(out_dir),
        dossiers=dossiers,
        seed=seed,
        units=units,
        start=start,
        end=end,
        formats=formats,
        single_file=single_file,
    ).path


def scale_units(count: int) -> list[tuple[str, str]]:
    """(commune code, province code) of the first `count` communes of the national list.

    In code order: the first 200 are all Hà Nội's, and codes such as `00004` keep their
    leading zeros.
    """
    from vietnamadminunits.database import query

    rows = query(
        "select wardCode, provinceCode from admin_units_legacy where wardCode is not null "
        f"order by wardCode limit {int(count)}"
    )
    if len(rows) < count:
        raise ValueError(f"the national list has only {len(rows)} communes, not {count}")
    return [(row["wardCode"], row["provinceCode"]) for row in rows]


def _generate_dossiers(
    out_dir: Path,
    *,
    dossiers: int,
    seed: int,
    units: int,
    start: date,
    end: date,
    formats: str,
    single_file: bool,
) -> ScaleSummary:
    if dossiers < 0:
        raise ValueError("dossiers cannot be negative")
    if units < 1:
        raise ValueError("units must be at least 1")
    if end < start:
        raise ValueError("end comes before start")
    if formats not in FORMATS:
        raise ValueError(f"formats is one of {', '.join(FORMATS)}, not {formats!r}")
    if single_file and formats != "csv":
        raise ValueError("one single file has one encoding: use formats='csv'")
    began = time.perf_counter()
    _prepare_output(out_dir)
    writer = _SingleFile(out_dir) if single_file else _DailyFiles(out_dir)
    generator = _Generator(seed, scale_units(units), start, end, formats)
    summary = ScaleSummary(path=writer.path, dossiers=dossiers)
    try:
        for day_index, unit_rows in generator.days(dossiers):
            rows, size = writer.write_day(generator, day_index, unit_rows)
            summary.rows += rows
            summary.bytes += size
    finally:
        writer.close()
    summary.files = writer.files
    summary.seconds = time.perf_counter() - began
    if not single_file:
        (out_dir / "sources.yml").write_text(
            f"sources:\n  - name: {SOURCE_NAME}\n    kind: dossier_files\n"
            f"    path: {SOURCE_FOLDER}\n",
            encoding="utf-8",
        )
    truth = out_dir / TRUTH_FILE
    truth.parent.mkdir(parents=True, exist_ok=True)
    options = {"seed": seed, "units": units, "start": start.isoformat(), "end": end.isoformat(),
               "formats": formats, "single_file": single_file}  # fmt: skip
    counts = {"dossiers": summary.dossiers, "rows": summary.rows, "files": summary.files,
              "bytes": summary.bytes}  # fmt: skip
    unit_formats = {
        code: VARIANTS[variant].name
        for code, variant in zip(generator.unit_codes, generator.unit_variants, strict=True)
    }
    truth.write_text(
        json.dumps({**options, **counts, "unit_formats": unit_formats}, indent=2) + "\n",
        encoding="utf-8",
    )
    return summary


def _prepare_output(out_dir: Path) -> None:
    """Replace an earlier run's output; never touch files this generator did not write."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ours = (out_dir / TRUTH_FILE).exists()
    folder, single = out_dir / SOURCE_FOLDER, out_dir / SINGLE_FILE
    if not ours and ((folder.exists() and any(folder.iterdir())) or single.exists()):
        raise FileExistsError(f"{out_dir} holds dossier files the generator did not write")
    if folder.exists():
        shutil.rmtree(folder)
    single.unlink(missing_ok=True)
    (out_dir / TRUTH_FILE).unlink(missing_ok=True)


class _DailyFiles:
    """The contract's layout: one file per unit and day that has rows."""

    def __init__(self, out_dir: Path):
        self.root = out_dir / SOURCE_FOLDER
        self.path = out_dir / "sources.yml"
        self.files = 0
        self.made: set[str] = set()

    def write_day(self, generator: _Generator, day_index: int, unit_rows) -> tuple[int, int]:
        rows_written = size = 0
        name = f"{generator.iso[day_index]}.csv"
        for unit_index, rows in unit_rows:
            code = generator.unit_codes[unit_index]
            variant = generator.variants[generator.unit_variants[unit_index]]
            content = variant.header + b"".join(rows)
            if code not in self.made:
                (self.root / code).mkdir(parents=True, exist_ok=True)
                self.made.add(code)
            (self.root / code / name).write_bytes(content)
            self.files += 1
            rows_written += len(rows)
            size += len(content)
        return rows_written, size

    def close(self) -> None:
        pass


class _SingleFile:
    """Every daily file's rows, in day then unit order, under one header."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / SINGLE_FILE
        self.handle = self.path.open("wb", buffering=8 << 20)
        self.files = 1
        self.header_written = False

    def write_day(self, generator: _Generator, day_index: int, unit_rows) -> tuple[int, int]:
        size = 0
        if not self.header_written:
            header = generator.variants[0].header
            self.handle.write(header)
            size, self.header_written = len(header), True
        rows_written = 0
        for _, rows in unit_rows:
            content = b"".join(rows)
            self.handle.write(content)
            rows_written += len(rows)
            size += len(content)
        return rows_written, size

    def close(self) -> None:
        if not self.header_written:
            self.handle.write(UTF8.header)
        self.handle.close()


@dataclass(frozen=True)
class _Variant:
    """How one unit's software writes its files."""

    name: str
    encoding: str
    bom: bool
    form: str  # Unicode normal form of the text

    def text(self, value: str) -> str:
        value = unicodedata.normalize(self.form, value)
        return simulate.windows_1258_text(value) if self.encoding == "cp1258" else value

    @property
    def header(self) -> bytes:
        line = self.text(",".join(simulate.HEADERS)) + "\r\n"
        return (b"\xef\xbb\xbf" if self.bom else b"") + line.encode(self.encoding)


UTF8 = _Variant(simulate.UTF8, "utf-8", False, "NFC")
VARIANTS = (
    UTF8,
    _Variant(simulate.UTF8_BOM, "utf-8", True, "NFC"),
    _Variant(simulate.UTF8_NFD, "utf-8", False, "NFD"),
    _Variant(simulate.WINDOWS_1258, "cp1258", False, "NFC"),
)


def _table(rng: random.Random, weighted, bits: int) -> list:
    """`2**bits` entries holding each value in proportion to its weight, shuffled."""
    size = 1 << bits
    values = [value for value, _ in weighted]
    return rng.choices(values, weights=[weight for _, weight in weighted], k=size)


def _exact_table(weighted, bits: int) -> list:
    """Like `_table`, for weights that already sum to `2**bits`: exact proportions."""
    table = [value for value, weight in weighted for _ in range(weight)]
    if len(table) != 1 << bits:
        raise ValueError("weights must sum to 2**bits")
    return table


class _Generator:
    def __init__(
        self,
        seed: int,
        units: list[tuple[str, str]],
        start: date,
        end: date,
        formats: str,
    ):
        self.rng = random.Random(f"{seed}:scale")
        self.allocation_rng = random.Random(f"{seed}:scale-allocation")
        rng = random.Random(f"{seed}:scale-tables")
        self.unit_codes = [code for code, _ in units]
        self.agencies = [f"H{province}.{code}" for code, province in units]
        self.unit_sizes = [rng.uniform(0.3, 2.5) for _ in units]
        if formats == "mixed":
            # One unit in twenty exports Windows-1258, one NFD, three a UTF-8 BOM.
            pattern = (3, 2, 1, 1, 1) + (0,) * 15
            self.unit_variants = [pattern[index % 20] for index in range(len(units))]
        else:
            self.unit_variants = [0] * len(units)
        self.variants = VARIANTS

        self.window = (end - start).days + 1
        span = self.window + HORIZON_DAYS
        calendar = simulate.WorkCalendar(
            range(start.year, (end + timedelta(HORIZON_DAYS)).year + 1)
        )
        days = [start + timedelta(days=offset) for offset in range(span)]
        self.iso = [day.isoformat() for day in days]
        self.dates = [day.strftime("%d/%m/%Y") for day in days]
        self.stamps = [day.strftime("%y%m%d") for day in days]
        self.working = [calendar.is_working(day) for day in days]
        self.weekday = [day.weekday() for day in days]
        # Working days in order, and for every day where the next one stands in that list.
        self.work_days = [index for index in range(span) if self.working[index]]
        self.next_work_pos = [0] * span
        position = len(self.work_days)
        for index in range(span - 1, -1, -1):
            if self.working[index]:
                position -= 1
            self.next_work_pos[index] = position
        self.times = [
            f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
            for seconds in (_office_clock(offset) for offset in range(OFFICE_SECONDS + 1))
        ]

        procedures = [p for p in simulate.load_catalogue() if p.level == "commune"]
        short_lives, long_lives = _exact_table(SHORT_LIVES, 7), _exact_table(LONG_LIVES, 7)
        self.procedures = [
            (
                procedure.code,
                _office_seconds(procedure),
                (str(procedure.fee_vnd), f"{procedure.fee_vnd:,}".replace(",", ".")),
                procedure.fee_vnd > 0,
                short_lives if _office_seconds(procedure) <= OFFICE_SECONDS else long_lives,
            )
            for procedure in procedures
        ]
        weights = [simulate.PROCEDURE_WEIGHTS.get(p.code, 1.0) for p in procedures]
        self.procedure_table = _table(rng, list(enumerate(weights)), PROCEDURE_BITS)
        names = [simulate._applicant(rng)["applicant_name"] for _ in range(1 << NAME_BITS)]
        self.names = [[variant.text(name) for name in names] for variant in VARIANTS]
        # Birth province, sex and century, birth year: the first six digits of a citizen id.
        ids = [simulate._applicant(rng)["applicant_id"] for _ in range(1 << ID_BITS)]
        self.id_prefixes = [identity[:6] for identity in ids]
        self.finals = _exact_table(FINAL_STATUSES, 6)
        self.outcomes = _exact_table(OUTCOMES, 7)
        self.channels = _exact_table(CHANNELS, 7)
        self.sequence = [f"{number:04d}" for number in range(10_000)]

    def days(self, total: int):
        """(day index, [(unit index, rows)]) for each day of the window, in order."""
        per_day = _apportion(total, [self._day_weight(i) for i in range(self.window)])
        alloc = self.allocation_rng
        pending: dict[int, list[list[bytes]]] = {}
        unit_count = len(self.unit_codes)
        for day_index in range(self.window):
            carried = pending.pop(day_index, None) or [[] for _ in range(unit_count)]
            noisy = [size * (0.7 + 0.6 * alloc.random()) for size in self.unit_sizes]
            counts = _apportion(per_day[day_index], noisy)
            for unit_index in range(unit_count):
                if counts[unit_index]:
                    self._receive(day_index, unit_index, counts[unit_index], carried, pending)
            yield day_index, [(u, rows) for u, rows in enumerate(carried) if rows]

    def _day_weight(self, index: int) -> float:
        if not self.working[index]:
            return CLOSED_DAY_WEIGHT
        return WEEKDAY_WEIGHTS[self.weekday[index]]

    def _receive(
        self,
        day: int,
        unit: int,
        count: int,
        carried: list[list[bytes]],
        pending: dict[int, list[list[bytes]]],
    ) -> None:
        """Draw `count` dossiers received at `unit` on `day`; file each of their rows."""
        bits = self.rng.getrandbits
        times, dates = self.times, self.dates
        work_days, next_work_pos = self.work_days, self.next_work_pos
        procedure_table, procedures = self.procedure_table, self.procedures
        names, id_prefixes = self.names[self.unit_variants[unit]], self.id_prefixes
        finals, outcomes, channels = self.finals, self.outcomes, self.channels
        sequence, last_day = self.sequence, self.window - 1
        unit_code = self.unit_codes[unit]
        code_prefix = f"{self.agencies[unit]}-{self.stamps[day]}-"
        day_text = dates[day] + " "
        today = carried[unit]
        encoding = self.variants[self.unit_variants[unit]].encoding
        open_day = self.working[day]
        # Received on a closed day, the clock starts at the next working morning.
        base = work_days[next_work_pos[day]]
        base_position = next_work_pos[day]
        unit_count = len(self.unit_codes)
        # Module constants as locals: the loop below runs for every dossier.
        office, last_second = OFFICE_SECONDS, OFFICE_SECONDS - 1
        same_day, refused, registered = SAME_DAY, REFUSED, REGISTERED
        two_days, three_days, early, late = TWO_DAYS, THREE_DAYS, EARLY, LATE
        returned_status, resolved_status = simulate.RETURNED, simulate.RESOLVED

        for number in range(1, count + 1):
            # Three draws of 64 bits each, cut into the fields below.
            a, b, d = bits(64), bits(64), bits(64)
            procedure = procedures[procedure_table[a & 1023]]
            procedure_code, legal_seconds, fees, fee_bearing, lives = procedure
            channel = channels[(a >> 10) & 127] if open_day else 2
            offset = (((a >> 17) & 0x7FFF) * office) >> 15
            name = names[(a >> 32) & 4095]
            serial = ((a >> 54) << 15 | d >> 49) % 1_000_000
            identity = f"{id_prefixes[(a >> 44) & 1023]}{serial:06d}"
            life = lives[b & 127]
            online = channel == 2
            if not open_day and life < two_days:
                life = registered if life == registered else two_days
            if life == registered and not online:
                life = same_day
            received = day_text + times[offset]
            dossier = f"{code_prefix}{sequence[number] if number < 10_000 else number}"
            fee = fees[(b >> 7) & 1] if fee_bearing else "0"
            digitized = "1" if ((b >> 8) & 127) < (118 if online else 70) else "0"
            reused = "1" if ((b >> 15) & 127) < (58 if online else 26) else "0"
            e_result = "1" if ((b >> 22) & 127) < (109 if online else 70) else "0"
            paid = "0"
            if online and fee_bearing:
                paid = ("1", "1", "1", "2", "2", "0", "1", "0")[(b >> 29) & 7]
            person = f",{name},{identity},"
            head = f"{dossier},{unit_code},{procedure_code},{channel},{received},"

            if life == registered:
                today.append(f"{head},,,1,0,{fee},0,0,0,0,{person}{received}\r\n".encode(encoding))
                continue
            if life == refused:
                today.append(f"{head},,,3,0,{fee},0,0,0,0,{person}{received}\r\n".encode(encoding))
                continue

            start_offset = offset if day == base else 0
            # Due at closing time rather than at the next opening (both are the same instant
            # of office time): the offset runs from 1 to office.
            total = start_offset + legal_seconds
            due_day = work_days[base_position + (total - 1) // office]
            due_offset = total - (total - 1) // office * office
            due = f"{dates[due_day]} {times[due_offset]}"
            flags = f"{fee},{paid},{digitized},"
            c = b >> 32

            if life == same_day:
                finished = offset + ((last_second - offset) * (c & 255) >> 9)
                returned = finished + ((last_second - finished) * ((c >> 8) & 255) >> 9)
                done = f"{day_text}{times[finished]}"
                back = f"{day_text}{times[returned]}"
                row = (
                    f"{head}{due},{done},{back},10,0,{flags}{e_result},{reused},{person}{back}\r\n"
                )
                today.append(row.encode(encoding))
                continue

            # Received today (2), or already being processed (4) by the evening export.
            if (c & 3) == 0 and open_day:
                moved = min(offset + 300 + ((c >> 2) & 4095), last_second)
                first = f"{head}{due},,,4,0,{flags}0,{reused},{person}{day_text}{times[moved]}\r\n"
            else:
                first = f"{head}{due},,,2,0,{flags}0,{reused},{person}{received}\r\n"
            today.append(first.encode(encoding))

            # Three appearances: the middle one mostly asks the citizen for more papers.
            # Waiting stops the clock, so later rows carry a due date a working day later.
            supplements, final_due = "0", due
            asked = life == three_days and d & 3
            if asked:
                supplements = "1"
                due_day = work_days[next_work_pos[due_day] + 1]
                final_due = f"{dates[due_day]} {times[due_offset]}"

            # When it ends, against the due day: early, on time or late.
            legal_days = next_work_pos[due_day] - base_position
            outcome = outcomes[(c >> 14) & 127]
            if outcome == early and legal_days > 1:
                finish_day = work_days[base_position + 1 + (c >> 21) % (legal_days - 1)]
            elif outcome == late:
                finish_day = work_days[next_work_pos[due_day] + 1 + ((c >> 21) & 3)]
            else:
                finish_day = due_day
            min_finish = work_days[base_position + (2 if life == three_days else 1)]
            finish_day = max(finish_day, min_finish)
            if finish_day > last_day:
                finish_day = -1  # ends after the window: that row is never written

            if life == three_days:
                middle_day = work_days[base_position + 1]
                if middle_day <= last_day:
                    status = "5" if asked else "4"
                    when = f"{dates[middle_day]} {times[((d >> 2) & 0x7FFF) * office >> 15]}"
                    row = (f"{head}{due},,,{status},{supplements},{flags}0,{reused},"
                           f"{person}{when}\r\n")  # fmt: skip
                    files = pending.get(middle_day) or _files(pending, middle_day, unit_count)
                    files[unit].append(row.encode(encoding))
            if finish_day < 0:
                continue

            head = f"{head}{final_due},"
            final = finals[(d >> 17) & 63]
            finish_offset = ((d >> 23) & 0x7FFF) * office >> 15
            if finish_day == due_day and outcome != late:  # on time: by the due hour
                finish_offset = finish_offset % (due_offset + 1)
            when = f"{dates[finish_day]} {times[finish_offset]}"
            apology = dates[due_day] if outcome == late and (d >> 40) & 1 else ""
            if final == returned_status:
                back_offset = finish_offset + ((last_second - finish_offset) *
                                               ((d >> 41) & 255) >> 9)  # fmt: skip
                back = f"{dates[finish_day]} {times[back_offset]}"
                row = (f"{head}{when},{back},10,{supplements},{flags}{e_result},"
                       f"{reused},{apology}{person}{back}\r\n")  # fmt: skip
            elif final == resolved_status:
                row = (f"{head}{when},,9,{supplements},{flags}{e_result},"
                       f"{reused},{apology}{person}{when}\r\n")  # fmt: skip
            else:
                row = (f"{head},,{final},{supplements},{flags}0,"
                       f"{reused},{person}{when}\r\n")  # fmt: skip
            files = pending.get(finish_day) or _files(pending, finish_day, unit_count)
            files[unit].append(row.encode(encoding))


def _files(pending: dict[int, list[list[bytes]]], day: int, units: int) -> list[list[bytes]]:
    """The rows to come in each unit's file of `day` (a list per unit)."""
    files = pending[day] = [[] for _ in range(units)]
    return files


def _office_clock(offset: int) -> int:
    """Seconds since midnight of a day's `offset`-th office second (07:00-11:30, 13:30-17:00)."""
    if offset < simulate.MORNING_SECONDS:
        return 7 * 3600 + offset
    return 13 * 3600 + 1800 + offset - simulate.MORNING_SECONDS


def _office_seconds(procedure: simulate.Procedure) -> int:
    """The legal time in office seconds (a calendar day counts as 5/7 of a working day)."""
    if procedure.day_type == "working":
        return round(procedure.processing_days * OFFICE_SECONDS)
    return math.ceil(procedure.processing_days) * OFFICE_SECONDS * 5 // 7


def _apportion(total: int, weights: list[float]) -> list[int]:
    """Split `total` in proportion to `weights`; the parts are whole and sum to `total`."""
    weight_sum = sum(weights)
    if total == 0 or weight_sum <= 0:
        return [0] * len(weights)
    shares = [total * weight / weight_sum for weight in weights]
    parts = [int(share) for share in shares]
    short = total - sum(parts)
    by_remainder = sorted(range(len(weights)), key=lambda i: parts[i] - shares[i])
    for index in by_remainder[:short]:
        parts[index] += 1
    return parts


def hold_back_night(root: Path, night: Path, share: float) -> int:
    """Move the latest daily files, about `share` of all bytes, from root to night (a
    benchmark's night of changes); return the bytes moved."""
    files = sorted(
        (p for p in root.rglob("*.csv") if "_truth" not in p.parts),
        key=lambda p: (p.stem, str(p)),
    )
    total = sum(p.stat().st_size for p in files)
    moved = 0
    for path in reversed(files):
        if moved >= share * total:
            break
        target = night / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        moved += path.stat().st_size
        path.rename(target)
    return moved
