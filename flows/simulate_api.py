"""A department dossier API (CONTRACTS §1b) on loopback, with faults on demand.

`ApiServer` serves a set of dossier records the way a department's system would:
`GET <base>/hoso?updated_since=&page=&page_size=` behind a bearer token, records ordered
by (`NgayCapNhat`, `MaHoSo`), one record per dossier holding its current state. A
`FaultPlan` makes a share of the answers 429 (with `Retry-After`), 500 or 503, answers
too slow for the client's timeout, or connections closed without an answer. Tests change
records while the client pages (`touch`, `add`, or an `on_request` hook that runs before
each answer) to shift pages under it.

Standard library only (`http.server`); everything is drawn from seeded `random.Random`,
so the same seed serves the same records and the same faults in the same order.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import math
import os
import random
import socket
import struct
import threading
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Annotated
from urllib.parse import parse_qs, urlsplit

import typer

from flows.simulate import (
    DEPARTMENTS,
    ONLINE,
    REFUSED,
    RESOLVED,
    RETURNED,
    STOPPED,
    SUPPLEMENT,
    WITHDRAWN,
    WorkCalendar,
    _applicant,
    load_catalogue,
)

API_TIME = "%Y%m%d%H%M%S"
FIELDS = (
    "MaHoSo", "MaDonVi", "MaTTHC", "KenhThucHien", "NgayTiepNhan", "NgayHenTra",
    "NgayKetThucXuLy", "NgayTra", "TrangThaiHoSo", "SoLanBoSung", "PhiLePhi",
    "DuocThanhToanTrucTuyen", "DaSoHoa", "CoKetQuaDienTu", "TaiSuDung", "NgayXinLoi",
    "HoTenNguoiNop", "SoGiayTo", "NgayCapNhat",
)  # fmt: skip

# Which district-level procedures of the catalogue each department receives.
DEPARTMENT_PROCEDURES = {
    "313-TNMT": ("1.012783", "1.012784", "1.012786"),  # land
    "313-KTHT": ("1.009994",),  # building permits
    "313-TCKH": ("1.001612", "2.000720", "1.001570", "1.001266", "2.000575"),  # household firms
    "313-NV": ("2.000528", "2.000806", "2.001008"),  # civil status, certification
}
FAULT_KINDS = ("429", "500", "503", "slow", "drop")


# -- the records


def department_records(
    *, seed: int = 2025, per_department: int = 60, end: date = date(2025, 6, 30), days: int = 45
) -> list[dict]:
    """The current state of `per_department` dossiers for each of the four departments.

    Received over the `days` days ending at `end`; each dossier's last change is no later
    than the end of `end`. Same arguments, same records.
    """
    catalogue = {p.code: p for p in load_catalogue()}
    start = end - timedelta(days=days - 1)
    calendar = WorkCalendar(range(start.year, end.year + 2))
    cutoff = datetime.combine(end, clock_time(17, 0))
    records = []
    for unit_code, _name in DEPARTMENTS:
        rng = random.Random(f"{seed}:api:{unit_code}")
        procedures = [catalogue[code] for code in DEPARTMENT_PROCEDURES[unit_code]]
        working = [start + timedelta(days=i) for i in range(days)]
        working = [d for d in working if calendar.is_working(d)]
        received = sorted(
            calendar.office_time_on(rng, rng.choice(working)) for _ in range(per_department)
        )
        sequence: Counter[date] = Counter()
        for received_at in received:
            sequence[received_at.date()] += 1
            records.append(
                _dossier(
                    rng, calendar, unit_code, procedures, received_at,
                    sequence[received_at.date()], cutoff,
                )
            )  # fmt: skip
    return sorted(records, key=order_key)


def _dossier(rng, calendar, unit_code, procedures, received_at, sequence, cutoff) -> dict:
    procedure = rng.choice(procedures)
    channel = rng.choices((1, 2, 3), weights=(55, 42, 3))[0]
    due = calendar.legal_due(received_at, procedure)
    fee = procedure.fee_vnd
    paid_online = rng.choices((1, 2, 0), weights=(60, 20, 20))[0] if channel == ONLINE else 0
    state = {
        "status": 4,
        "finished": None,
        "returned": None,
        "supplements": 0,
        "apology": None,
        "e_result": 0,
        "updated": calendar.add_office_minutes(received_at, rng.randint(10, 240)),
    }
    draw = rng.random()
    if draw < 0.02:
        state.update(status=REFUSED, updated=received_at)
    elif draw < 0.05:
        state.update(status=rng.choice((WITHDRAWN, STOPPED)))
    else:
        if rng.random() < 0.15:
            state["supplements"] = rng.choice((1, 1, 2))
        late = rng.random() < 0.15
        day = calendar.add_working_days(due.date(), rng.randint(1, 4)) if late else None
        finished = (
            calendar.office_time_on(rng, day)
            if late
            else calendar.snap(received_at + (due - received_at) * rng.uniform(0.3, 0.97))
        )
        if finished is not None and finished <= cutoff:
            state.update(status=RESOLVED, finished=finished, updated=finished)
            state["e_result"] = int(rng.random() < (0.85 if channel == ONLINE else 0.5))
            if late and rng.random() < 0.6:
                state["apology"] = calendar.office_time_on(rng, due.date()) or due
            returned = calendar.add_office_minutes(finished, rng.randint(5, 3 * 8 * 60))
            if returned <= cutoff:
                state.update(status=RETURNED, returned=returned, updated=returned)
        elif state["supplements"]:
            state["status"] = SUPPLEMENT
    state["updated"] = min(state["updated"], cutoff)
    empty = rng.choice(("", None))  # departments' systems write either for "absent"
    agency = unit_code.split("-", 1)[1]
    return {
        "MaHoSo": f"H31.13.{agency}-{received_at:%y%m%d}-{sequence:04d}",
        "MaDonVi": unit_code,
        "MaTTHC": procedure.code,
        "KenhThucHien": channel,
        "NgayTiepNhan": received_at.strftime(API_TIME),
        "NgayHenTra": due.strftime(API_TIME) if state["status"] != REFUSED else empty,
        "NgayKetThucXuLy": _stamp(state["finished"], empty),
        "NgayTra": _stamp(state["returned"], empty),
        "TrangThaiHoSo": state["status"],
        "SoLanBoSung": state["supplements"],
        "PhiLePhi": fee,
        "DuocThanhToanTrucTuyen": paid_online if fee and state["status"] != REFUSED else 0,
        "DaSoHoa": int(rng.random() < (0.9 if channel == ONLINE else 0.6)),
        "CoKetQuaDienTu": state["e_result"],
        "TaiSuDung": int(rng.random() < 0.3),
        "NgayXinLoi": _stamp(state["apology"], empty),
        **{
            "HoTenNguoiNop" if key == "applicant_name" else "SoGiayTo": value
            for key, value in _applicant(rng).items()
        },
        "NgayCapNhat": state["updated"].strftime(API_TIME),
    }


def _stamp(moment: datetime | None, empty: str | None) -> str | None:
    return moment.strftime(API_TIME) if moment is not None else empty


def order_key(record: dict) -> tuple[str, str]:
    """The order the API serves records in: (NgayCapNhat, MaHoSo)."""
    return (record.get("NgayCapNhat") or "", record.get("MaHoSo") or "")


# -- faults


@dataclass(frozen=True)
class FaultPlan:
    """Which answers go wrong. Rates are shares of authorised requests, drawn per request.

    `script` fixes the outcomes of the first requests ("ok", "429", "500", "503", "slow",
    "drop") before random draws take over; `max_streak` caps faults in a row so that a
    client with a bounded number of attempts can always get through.
    """

    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_503: float = 0.0
    rate_slow: float = 0.0
    rate_drop: float = 0.0
    slow_seconds: float = 2.0
    retry_after: tuple[str | None, ...] = ("0", "1")
    max_streak: int | None = None
    script: tuple[str, ...] = ()
    seed: int = 0

    @classmethod
    def mixed(cls, rate: float, **options) -> FaultPlan:
        """`rate` of the requests fail, split evenly between the five kinds of fault."""
        if not 0 <= rate <= 1:
            raise ValueError(f"a fault rate is a share between 0 and 1, got {rate}")
        share = rate / len(FAULT_KINDS)
        return cls(
            rate_429=share, rate_500=share, rate_503=share, rate_slow=share, rate_drop=share,
            **options,
        )  # fmt: skip

    @property
    def rates(self) -> dict[str, float]:
        return {
            "429": self.rate_429,
            "500": self.rate_500,
            "503": self.rate_503,
            "slow": self.rate_slow,
            "drop": self.rate_drop,
        }


NO_FAULTS = FaultPlan()


@dataclass(frozen=True)
class LoggedRequest:
    outcome: str  # ok, 400, 401, 404, 429, 500, 503, slow, drop
    updated_since: str | None
    page: int | None
    page_size: int | None
    records: int = 0  # records in the answer


# -- the server


class ApiServer:
    """The §1b API on a loopback port; use as a context manager.

    `.url` is the base URL for the sources file; `.requests` counts answers by outcome,
    `.request_log` lists every request, `.records_served` counts records sent in
    complete answers. `on_request(server, n)` runs before the n-th authorised request
    (1-based) is answered, under the server's lock: tests change records there.
    """

    def __init__(
        self,
        records: Iterable[dict],
        token: str,
        faults: FaultPlan = NO_FAULTS,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        base_path: str = "/api",
        max_page_size: int = 1000,
        since_inclusive: bool = True,
        on_request: Callable[[ApiServer, int], None] | None = None,
    ):
        if not token:
            raise ValueError("the API server needs a non-empty token")
        self._token = token.encode()
        self.faults = faults
        self.host, self.port = host, port
        self.base_path = "/" + base_path.strip("/")
        self.max_page_size = max_page_size
        self.since_inclusive = since_inclusive
        self.on_request = on_request
        self.requests: Counter[str] = Counter()
        self.request_log: list[LoggedRequest] = []
        self.records_served = 0
        self._records: dict[str, dict] = {}
        self._lock = threading.RLock()
        self._rng = random.Random(f"faults:{faults.seed}")
        self._streak = 0
        self._authorised = 0
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.add(records)

    # -- lifecycle
    def __enter__(self) -> ApiServer:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> None:
        httpd = ThreadingHTTPServer((self.host, self.port), _Handler)
        httpd.daemon_threads = True
        httpd.api = self  # type: ignore[attr-defined]
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever, args=(0.05,), name="api-server", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.base_path}"

    # -- the data
    def records(self) -> list[dict]:
        """Every record as the server holds it now, in serving order (copies)."""
        with self._lock:
            return [dict(r) for r in sorted(self._records.values(), key=order_key)]

    def versions(self) -> set[tuple[str, str]]:
        """(MaHoSo, NgayCapNhat) of every record held now."""
        with self._lock:
            return {(r["MaHoSo"], r["NgayCapNhat"]) for r in self._records.values()}

    def add(self, records: Iterable[dict]) -> None:
        """Add records, or replace those with the same MaHoSo."""
        with self._lock:
            for record in records:
                self._records[record["MaHoSo"]] = dict(record)

    def latest_change(self) -> datetime | None:
        with self._lock:
            stamps = [r["NgayCapNhat"] for r in self._records.values() if r.get("NgayCapNhat")]
        return datetime.strptime(max(stamps), API_TIME) if stamps else None

    def touch(self, codes: Iterable[str], when: datetime | None = None, **changes) -> list[dict]:
        """Record a change of these dossiers at `when` (default: a second after the latest
        change held), which moves them to the end of the order; `changes` sets fields."""
        with self._lock:
            if when is None:
                latest = self.latest_change() or datetime(2025, 1, 1)
                when = latest + timedelta(seconds=1)
            touched = []
            for code in codes:
                record = self._records[code]
                record.update(changes)
                record["NgayCapNhat"] = when.strftime(API_TIME)
                touched.append(dict(record))
            return touched

    # -- answering
    def _answer(self, handler: _Handler) -> None:
        parts = urlsplit(handler.path)
        if parts.path.rstrip("/") != f"{self.base_path}/hoso":
            self._send_json(
                handler, 404, {"error": "not found"}, LoggedRequest("404", None, None, None)
            )
            return
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        since = query.get("updated_since")
        try:
            page = int(query.get("page", "1"))
            page_size = int(query.get("page_size", "100"))
        except ValueError:
            page = page_size = 0
        entry = LoggedRequest("ok", since, page or None, page_size or None)
        if not self._authorised_request(handler.headers.get("Authorization", "")):
            self._send_json(handler, 401, {"error": "unauthorized"}, replace(entry, outcome="401"))
            return
        if page < 1 or page_size < 1 or (since is not None and not _is_api_time(since)):
            message = "page and page_size are positive integers; updated_since is yyyyMMddHHmmss"
            self._send_json(handler, 400, {"error": message}, replace(entry, outcome="400"))
            return

        with self._lock:
            self._authorised += 1
            if self.on_request is not None:
                self.on_request(self, self._authorised)
            fault = self._draw_fault()
            reset = fault == "drop" and self._rng.random() < 0.5
            retry_after = self._rng.choice(self.faults.retry_after) if fault == "429" else None
            body = self._page(since, page, min(page_size, self.max_page_size))
        if fault == "drop":
            self._log(replace(entry, outcome="drop"))
            _drop(handler, reset)
            return
        if fault in ("429", "500", "503"):
            headers = {"Retry-After": retry_after} if retry_after is not None else {}
            self._send_json(
                handler, int(fault), {"error": "try again later"},
                replace(entry, outcome=fault), headers,
            )  # fmt: skip
            return
        if fault == "slow":
            self._log(replace(entry, outcome="slow"))
            if self._stopping.wait(self.faults.slow_seconds):
                return
            self._send_json(handler, 200, body, None)
            return
        self._send_json(handler, 200, body, replace(entry, records=len(body["data"])))

    def _authorised_request(self, header: str) -> bool:
        scheme, _, given = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), self._token
        )

    def _draw_fault(self) -> str | None:
        index = self._authorised - 1
        plan = self.faults
        if index < len(plan.script):
            outcome = plan.script[index]
        elif plan.max_streak is not None and self._streak >= plan.max_streak:
            outcome = "ok"
        else:
            draw, outcome = self._rng.random(), "ok"
            for kind, rate in plan.rates.items():
                if draw < rate:
                    outcome = kind
                    break
                draw -= rate
        self._streak = 0 if outcome == "ok" else self._streak + 1
        return None if outcome == "ok" else outcome

    def _page(self, since: str | None, page: int, page_size: int) -> dict:
        ordered = sorted(self._records.values(), key=order_key)
        if since is not None:
            ordered = [
                r
                for r in ordered
                if (r.get("NgayCapNhat") or "") > since
                or (self.since_inclusive and r.get("NgayCapNhat") == since)
            ]
        total_pages = max(1, math.ceil(len(ordered) / page_size))
        chunk = ordered[(page - 1) * page_size : page * page_size]
        return {"data": [dict(r) for r in chunk], "page": page, "total_pages": total_pages}

    def _log(self, entry: LoggedRequest | None) -> None:
        if entry is None:
            return
        with self._lock:
            self.requests[entry.outcome] += 1
            self.request_log.append(entry)
            if entry.outcome == "ok":
                self.records_served += entry.records

    def _send_json(self, handler, status: int, body: dict, entry, headers=None) -> None:
        self._log(entry)
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json; charset=utf-8")
            handler.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a slow answer after its timeout)


class _Handler(BaseHTTPRequestHandler):
    server_version = "cchc-simulated-department-api"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.server.api._answer(self)  # type: ignore[attr-defined]

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        pass  # quiet; the server keeps its own request log (and never the token)


def _drop(handler: BaseHTTPRequestHandler, reset: bool) -> None:
    """Close the connection without answering, with a reset or a plain close."""
    handler.close_connection = True
    connection = handler.connection
    if reset:
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)


def _is_api_time(text: str) -> bool:
    try:
        datetime.strptime(text, API_TIME)
    except ValueError:
        return False
    return len(text) == 14


def nfd(text: str) -> str:
    """The decomposed form some systems send (the loader stores NFC)."""
    return unicodedata.normalize("NFD", text)


# -- command line (mounted as `cchc simulate serve-api`)


def serve_api_command(
    port: Annotated[int, typer.Option("--port", help="Loopback port to listen on")] = 8765,
    token_env: Annotated[
        str, typer.Option("--token-env", help="Environment variable holding the bearer token")
    ] = "TNMT_API_TOKEN",
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same records")] = 2025,
    fault_rate: Annotated[
        float,
        typer.Option("--fault-rate", help="Share of requests answered 429/500/503/slow/dropped"),
    ] = 0.0,
    slow_seconds: Annotated[
        float, typer.Option("--slow-seconds", help="How long a slow answer takes")
    ] = 45.0,
    per_department: Annotated[
        int, typer.Option("--per-department", help="Dossiers per department")
    ] = 60,
    end: Annotated[str, typer.Option("--end", help="Last day, YYYY-MM-DD")] = "2025-06-30",
) -> None:
    """Serve the four departments' dossiers as a department API (CONTRACTS §1b) until Ctrl-C."""
    token = os.environ.get(token_env, "")
    if not token:
        raise typer.BadParameter(
            f"set the environment variable {token_env} to the token clients must send",
            param_hint="--token-env",
        )
    try:
        last_day = date.fromisoformat(end)
        faults = FaultPlan.mixed(fault_rate, slow_seconds=slow_seconds, seed=seed)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    records = department_records(seed=seed, per_department=per_department, end=last_day)
    with ApiServer(records, token, faults, port=port) as server:
        typer.echo(f"Serving {len(records)} dossiers of {len(DEPARTMENTS)} departments")
        typer.echo(f"  url: {server.url}   (token from ${token_env}; fault rate {fault_rate:.0%})")
        typer.echo("  sources file entry:  kind: dossier_api, url: <url>, token_env: " + token_env)
        typer.echo("Ctrl-C to stop.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            typer.echo(f"stopped; answers by outcome: {dict(server.requests)}")
