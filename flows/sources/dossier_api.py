"""Department dossier API (CONTRACTS §1b): changes since the watermark -> typed frame -> raw.

Paging within a run
    The API pages by offset over records ordered by (`NgayCapNhat`, `MaHoSo`), and a
    record changed during the run moves to the end of that order: plain page 1, 2, 3...
    would skip a record each time one on an earlier page moves. So the client pages by
    key instead: after each page it asks again from page 1 with `updated_since` = the
    page's last `NgayCapNhat` minus one second. Every query starts from a time, not an
    offset, so records moving away from earlier pages cannot shift what comes next; the
    overlap is dropped by (`MaHoSo`, `NgayCapNhat`). The minus one second makes the
    client right whether the server reads `updated_since` as "at or after" or "after".

    A page whose records all fall within the cursor's second and the next cannot move the
    cursor forward; only then does the client fall back to page n+1 of the same query.
    Offset paging can skip a record when one already fetched leaves the block (it shows up
    again later in the run with a newer time) or one is inserted before the position (a
    record already fetched shows up again on a later page). Either is noticed, and the
    run walks again from that block's cursor; the walk is bounded, then the run fails
    with nothing loaded.

Across runs: the watermark
    `raw.api_watermarks` holds the latest `NgayCapNhat` among the records a committed
    run loaded or quarantined (W). The next run asks from W - 1 s, so a record changed
    in second W after the previous run had read that second is not lost, and drops what
    is already in `raw.dossier_log` under the same (dossier_code, updated_at), or, for a
    record of that overlap quarantined before, the same problem already in
    `raw.quarantine`: nothing is loaded twice. The watermark moves in the transaction
    that loads the batch, so a run that fails (server down mid-run, warehouse error)
    leaves it, and the raw layer, as they were; the next run fetches the same changes.
    Times are compared as the server writes them (local time, whole seconds); the
    design assumes the server stamps changes with a clock that does not go back.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
import pandas as pd
from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from flows import progress, raw_schema
from flows.load import SourceResult, split_by_findings, write_batch
from flows.settings import LOCAL_TZ, Source
from flows.sources import dossier_files
from flows.sources.common import nfc, parse_datetimes
from flows.warehouse import Connection, Warehouse

log = logging.getLogger(__name__)

RAW = raw_schema.RAW_SCHEMA
API_TIME = "%Y%m%d%H%M%S"
ONE_SECOND = timedelta(seconds=1)
BEGINNING = datetime(1970, 1, 1)  # `updated_since` of a source's first run

# API field -> canonical column (CONTRACTS §1b, with the meanings of §1a).
FIELDS = {
    "MaHoSo": "dossier_code",
    "MaDonVi": "unit_code",
    "MaTTHC": "procedure_code",
    "KenhThucHien": "channel",
    "NgayTiepNhan": "received_at",
    "NgayHenTra": "due_at",
    "NgayKetThucXuLy": "finished_at",
    "NgayTra": "returned_at",
    "TrangThaiHoSo": "status_code",
    "SoLanBoSung": "supplement_count",
    "PhiLePhi": "fee_vnd",
    "DuocThanhToanTrucTuyen": "paid_online",
    "DaSoHoa": "digitized",
    "CoKetQuaDienTu": "e_result",
    "TaiSuDung": "reused",
    "NgayXinLoi": "apology_at",
    "HoTenNguoiNop": "applicant_name",
    "SoGiayTo": "applicant_id",
    "NgayCapNhat": "updated_at",
}
RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}


class ApiError(RuntimeError):
    """The department API could not be read; nothing of this run was loaded."""


class ApiConfigError(ApiError):
    """The source lacks its URL or token."""


class ApiAuthError(ApiError):
    """The server refused the token."""


class ApiUnavailable(ApiError):
    """The server kept failing after every retry."""


class _Transient(Exception):
    """A failure worth another try (429, 5xx, timeout, dropped connection)."""

    def __init__(self, description: str, retry_after: float | None = None):
        super().__init__(description)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """How hard a request is tried: exponential backoff, bounded attempts."""

    attempts: int = 6
    backoff_seconds: float = 1.0  # first wait; doubles on each further attempt
    backoff_max_seconds: float = 60.0
    retry_after_max_seconds: float = 120.0  # a longer Retry-After is cut to this
    timeout_seconds: float = 30.0

    @classmethod
    def from_source(cls, source: Source) -> RetryPolicy:
        """Optional `max_attempts` and `timeout_seconds` in the source's entry."""
        extra = source.model_extra or {}
        options = {}
        if "max_attempts" in extra:
            options["attempts"] = int(extra["max_attempts"])
        if "timeout_seconds" in extra:
            options["timeout_seconds"] = float(extra["timeout_seconds"])
        return cls(**options)


class DossierApiClient:
    """GET <url>/hoso with a bearer token; each page retried on transient failures."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        page_size: int = 500,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.url = url.rstrip("/")
        self.page_size = page_size
        self.policy = policy or RetryPolicy()
        self.requests = 0  # HTTP requests sent, retries included
        self._sleep = sleep
        # The token lives only in this header: never in a URL, a message or a log line.
        self._http = httpx.Client(
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=self.policy.timeout_seconds,
            follow_redirects=False,
        )

    def __enter__(self) -> DossierApiClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def get_page(self, since: datetime, page: int) -> dict:
        """One page of records changed since `since`: {"data": [...], "page", "total_pages"}."""
        params = {
            "updated_since": since.strftime(API_TIME),
            "page": page,
            "page_size": self.page_size,
        }
        where = f"{self.url}/hoso?updated_since={params['updated_since']}&page={page}"
        retrying = Retrying(
            stop=stop_after_attempt(self.policy.attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_Transient),
            before_sleep=lambda state: log.warning(
                "dossier API %s: %s; retry %d of %d in %.1f s",
                where,
                state.outcome.exception(),
                state.attempt_number,
                self.policy.attempts - 1,
                state.upcoming_sleep,
            ),
            sleep=self._sleep,
        )
        try:
            for attempt in retrying:
                with attempt:
                    body = self._get_once(params, where)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise ApiUnavailable(
                f"dossier API {where}: no answer after {self.policy.attempts} attempts "
                f"(last: {last})"
            ) from None
        return body

    def _get_once(self, params: dict, where: str) -> dict:
        self.requests += 1
        try:
            response = self._http.get(f"{self.url}/hoso", params=params)
        except httpx.TimeoutException:
            raise _Transient(f"no answer within {self.policy.timeout_seconds:g} s") from None
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise _Transient(f"connection dropped ({type(exc).__name__})") from None
        status = response.status_code
        if status in (401, 403):
            raise ApiAuthError(
                f"dossier API {self.url}: the server refused the token (HTTP {status}); "
                "check the token in the source's token_env variable"
            )
        if status in RETRY_STATUSES:
            raise _Transient(f"HTTP {status}", _retry_after(response.headers.get("Retry-After")))
        if status != 200:
            raise ApiError(f"dossier API {where}: unexpected answer HTTP {status}")
        try:
            body = response.json()
        except ValueError:
            raise _Transient("answer is not JSON (cut short?)") from None
        if not (
            isinstance(body, dict)
            and isinstance(body.get("data"), list)
            and all(isinstance(r, dict) for r in body["data"])
        ):
            raise ApiError(f"dossier API {where}: answer is not {{'data': [records], ...}}")
        return body

    def _wait(self, state: RetryCallState) -> float:
        """Retry-After when the server gives one (capped), else exponential backoff."""
        failure = state.outcome.exception() if state.outcome else None
        if isinstance(failure, _Transient) and failure.retry_after is not None:
            return min(failure.retry_after, self.policy.retry_after_max_seconds)
        backoff = wait_exponential(
            multiplier=self.policy.backoff_seconds, max=self.policy.backoff_max_seconds
        )
        return backoff(state)


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds, or as an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


# -- fetching every change once


@dataclass
class Fetched:
    records: list[dict]  # unique by (MaHoSo, NgayCapNhat), in the order first received
    pages: int = 0  # pages answered
    walks: int = 0  # walks from a cursor to the end (more than one: a block was re-read)


@dataclass
class _Block:
    """Pages read by offset because they all share the cursor's second (and the next)."""

    cursor: datetime
    codes: set[str] = field(default_factory=set)
    last: str = ""  # latest NgayCapNhat in the block
    disturbed: bool = False


def fetch_changes(
    get_page: Callable[[datetime, int], dict],
    since: datetime,
    *,
    max_walks: int = 5,
    max_pages: int = 100_000,
) -> Fetched:
    """Every record changed at or after `since` (see the module docstring for why no
    record is lost or fetched twice when pages shift under the client)."""
    fetched = Fetched(records=[])
    kept: dict[tuple[str, str], dict] = {}
    start: datetime | None = since
    while start is not None:
        if fetched.walks == max_walks:
            raise ApiError(
                f"records kept moving while paging (walked {max_walks} times); nothing was "
                "loaded, the next run tries again"
            )
        fetched.walks += 1
        start = _walk(get_page, start, kept, fetched, max_pages)
    fetched.records = list(kept.values())
    return fetched


def _walk(get_page, start: datetime, kept: dict, fetched: Fetched, max_pages: int):
    """Page from `start` to the end; return where to walk again, or None when complete."""
    cursor, page = start, 1
    seen: set[tuple[str, str]] = set()  # this walk's keys
    blocks: list[_Block] = []
    block: _Block | None = None
    while True:
        if fetched.pages >= max_pages:
            raise ApiError(f"more than {max_pages} pages in one run; nothing was loaded")
        body = get_page(cursor, page)
        fetched.pages += 1
        progress.advance()
        records = body["data"]
        for record in records:
            key = record_key(record)
            if key in seen:
                if block is not None and page > 1:
                    block.disturbed = True  # inserted before the offset: the page shifted
                continue
            seen.add(key)
            kept.setdefault(key, record)
            for earlier in blocks:
                if key[0] in earlier.codes and key[1] > earlier.last:
                    earlier.disturbed = True  # left a block read by offset
        total_pages = body.get("total_pages")
        if not records or not isinstance(total_pages, int) or page >= total_pages:
            break
        last = api_time(record_key(records[-1])[1])
        following = last - ONE_SECOND if last is not None else None
        if following is None or following <= cursor:
            if block is None or block.cursor != cursor:
                block = _Block(cursor)
                blocks.append(block)
            block.codes.update(record_key(r)[0] for r in records)
            block.last = max(block.last, *(record_key(r)[1] for r in records))
            page += 1
        else:
            block, cursor, page = None, following, 1
    disturbed = [b.cursor for b in blocks if b.disturbed]
    return min(disturbed) if disturbed else None


def record_key(record: dict) -> tuple[str, str]:
    """(MaHoSo, NgayCapNhat) as text: what identifies one version of a dossier.

    A record without MaHoSo (quarantined later) is told apart from others by its content.
    """
    code = to_text(record.get("MaHoSo"), "dossier_code")
    if not code:
        content = json.dumps(record, ensure_ascii=False, sort_keys=True, default=str)
        code = "#" + hashlib.sha256(content.encode("utf-8")).hexdigest()[:16]
    return code, to_text(record.get("NgayCapNhat"), "raw")


def api_time(text: str) -> datetime | None:
    if not re.fullmatch(r"\d{14}", text or ""):
        return None
    try:
        return datetime.strptime(text, API_TIME)
    except ValueError:
        return None


# -- API records -> the text cells of §1a


def to_text(value, column: str) -> str:
    """One API value as a §1a file would write it: times dd/mm/yyyy HH:MM:SS, numbers as
    digits, absent as "". A value that fits no format stays as it came, for validation
    to report."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if not isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    text = nfc(value).strip()
    if column in dossier_files.DATETIME_COLUMNS:
        return _file_time(text)
    return text


def _file_time(text: str) -> str:
    if re.fullmatch(r"\d{14}|\d{12}|\d{8}", text):
        day = f"{text[6:8]}/{text[4:6]}/{text[0:4]}"
        clock = ":".join(text[i : i + 2] for i in range(8, len(text), 2))
        return f"{day} {clock}" if clock else day
    return text


def text_frame(records: list[dict]) -> pd.DataFrame:
    """The records as text cells under the canonical column names."""
    return pd.DataFrame(
        {
            column: [to_text(r.get(api_field), column) for r in records]
            for api_field, column in FIELDS.items()
        },
        index=pd.RangeIndex(len(records)),
        dtype=object,
    )


# -- loading


def endpoint(source: Source) -> tuple[str, str]:
    """The source's URL and its token, read from the variable `token_env` names."""
    if not source.url:
        raise ApiConfigError(f"source {source.name}: a dossier_api source needs a 'url'")
    if not source.token_env:
        raise ApiConfigError(
            f"source {source.name}: a dossier_api source needs 'token_env', the name of the "
            "environment variable that holds its token"
        )
    token = os.environ.get(source.token_env, "").strip()
    if not token:
        raise ApiConfigError(
            f"source {source.name}: environment variable {source.token_env} is not set "
            "(it must hold the API token)"
        )
    return source.url, token


def read_watermark(warehouse: Warehouse, source_name: str) -> datetime | None:
    with warehouse.connect() as conn:
        rows = conn.fetchall(
            f"select max(watermark) from {RAW}.api_watermarks where source_name = %s",
            [source_name],
        )
    return pd.Timestamp(rows[0][0]).to_pydatetime() if rows and rows[0][0] is not None else None


def load_dossier_api(
    warehouse: Warehouse,
    source: Source,
    run_id: str,
    *,
    policy: RetryPolicy | None = None,
    page_size: int | None = None,
) -> SourceResult:
    """Fetch what changed since the watermark, validate it, load it with the new watermark.

    The source's entry may set `page_size`, `max_attempts` and `timeout_seconds`.
    """
    result = SourceResult(source.name, source.kind, files_seen=1)
    url, token = endpoint(source)
    watermark = read_watermark(warehouse, source.name)
    since = watermark - ONE_SECOND if watermark else BEGINNING
    size = page_size or int((source.model_extra or {}).get("page_size", 500))
    with DossierApiClient(
        url, token, page_size=size, policy=policy or RetryPolicy.from_source(source)
    ) as client:
        progress.total(None, "pages")  # known only when the last page says so
        fetched = fetch_changes(client.get_page, since)
        requests = client.requests
    log.info(
        "source %s: %d records changed since %s, in %d pages (%d requests)",
        source.name, len(fetched.records), since, fetched.pages, requests,
    )  # fmt: skip

    text = text_frame(fetched.records)
    changed_at = parse_datetimes(text["updated_at"])
    new_watermark = _next_watermark(watermark, changed_at)
    fresh = ~_already_loaded(warehouse, source.name, text, changed_at, since if watermark else None)
    records = [r for r, keep in zip(fetched.records, fresh, strict=True) if keep]
    text = text[fresh].reset_index(drop=True)
    changed_at = changed_at[fresh].reset_index(drop=True)
    # Rows of the re-read second(s) may have been quarantined by the run that set the watermark.
    overlap = pd.Series(False, index=text.index)
    if watermark is not None:
        overlap = changed_at.isna() | (changed_at <= watermark)

    file_path = f"api/{run_id}"
    content = json.dumps(records, ensure_ascii=False, sort_keys=True).encode("utf-8")
    digest = hashlib.sha256(content).hexdigest()
    load_id = f"{run_id}:{digest[:12]}"
    text["file_path"] = file_path
    text["file_date"] = pd.Timestamp(datetime.now(LOCAL_TZ).date())
    text["row_number"] = range(1, len(text) + 1)
    text["unit_folder"] = None
    batch = dossier_files.to_typed(text) if len(text) else pd.DataFrame()
    if len(batch):
        batch["load_id"] = load_id
        batch["source_name"] = source.name
    accepted, issues, flags = split_by_findings(
        batch, "dossier_api", source.name, dossier_files.RECORD_CODE
    )
    issues, repeated = _drop_known_issues(warehouse, source.name, issues, overlap)

    result.rows_read = len(text) - len(repeated)
    result.rows_loaded = len(accepted)
    result.rows_quarantined = len({i["row_number"] for i in issues})
    result.rows_flagged = len({f["row_number"] for f in flags})
    if not result.rows_read and new_watermark == watermark:
        result.files_unchanged = 1
        return result

    file_rows = []
    if result.rows_read:
        result.files_loaded = 1
        file_rows.append(
            {
                "source_name": source.name,
                "file_path": file_path,
                "file_date": text["file_date"].iloc[0],
                "unit_folder": None,
                "file_sha256": digest,
                "file_bytes": len(content),
                "file_mtime_ns": None,
                "encoding": "json",
                "rows_read": result.rows_read,
                "rows_loaded": result.rows_loaded,
                "rows_quarantined": result.rows_quarantined,
                "load_id": load_id,
                "run_id": run_id,
                "loaded_at": datetime.now(),
            }
        )

    def advance_watermark(conn: Connection) -> None:
        conn.execute(f"delete from {RAW}.api_watermarks where source_name = %s", [source.name])
        conn.execute(
            f"insert into {RAW}.api_watermarks "
            "(source_name, watermark, records_loaded, run_id, updated_at) "
            "values (%s, %s, %s, %s, %s)",
            [source.name, new_watermark, result.rows_loaded, run_id, datetime.now()],
        )

    write_batch(
        warehouse,
        source_name=source.name,
        table=dossier_files.TABLE,
        accepted=accepted,
        issues=issues,
        flags=flags,
        file_rows=file_rows,
        forget_paths=[],
        after=advance_watermark if new_watermark is not None else None,
    )
    return result


def _next_watermark(watermark: datetime | None, changed_at: pd.Series) -> datetime | None:
    """The latest change time fetched; a time more than a day ahead of the clock is a typo
    in the department's data and would hide every real change after it, so it is left out
    (such a record is fetched again each run and found already loaded)."""
    horizon = pd.Timestamp(datetime.now(LOCAL_TZ).replace(tzinfo=None) + timedelta(days=1))
    plausible = changed_at[changed_at.notna() & (changed_at <= horizon)]
    latest = plausible.max().to_pydatetime() if len(plausible) else None
    candidates = [t for t in (watermark, latest) if t is not None]
    return max(candidates) if candidates else None


def _already_loaded(
    warehouse: Warehouse,
    source_name: str,
    text: pd.DataFrame,
    changed_at: pd.Series,
    since: datetime | None,
) -> pd.Series:
    """Rows whose (dossier_code, updated_at) raw.dossier_log already holds for this source."""
    if text.empty:
        return pd.Series(False, index=text.index)
    sql = f"select dossier_code, updated_at from {RAW}.dossier_log where source_name = %s"
    params: list = [source_name]
    if since is not None:
        sql += " and (updated_at >= %s or updated_at is null)"
        params.append(since)
    with warehouse.connect() as conn:
        loaded = {(code, _moment(at)) for code, at in conn.fetchall(sql, params)}
    keys = zip(text["dossier_code"], changed_at, strict=True)
    return pd.Series([(code or None, _moment(at)) in loaded for code, at in keys], index=text.index)


def _moment(value) -> datetime | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).to_pydatetime()


def _drop_known_issues(
    warehouse: Warehouse, source_name: str, issues: list[dict], overlap: pd.Series
) -> tuple[list[dict], set[int]]:
    """Leave out rows of the re-read overlap whose every problem raw.quarantine already
    holds from an earlier API run: the same record, quarantined once."""
    candidates = {i["row_number"] for i in issues if overlap.iloc[i["row_number"] - 1]}
    if not candidates:
        return issues, set()
    with warehouse.connect() as conn:
        known = set(
            conn.fetchall(
                f"select record_code, column_name, value, rule from {RAW}.quarantine "
                "where source_name = %s and file_path like %s",
                [source_name, "api/%"],
            )
        )
    by_row: dict[int, list[dict]] = {}
    for found in issues:
        by_row.setdefault(found["row_number"], []).append(found)
    repeated = {
        row
        for row in candidates
        if all(
            (i["record_code"], i["column_name"], i["value"], i["rule"]) in known
            for i in by_row[row]
        )
    }
    return [i for i in issues if i["row_number"] not in repeated], repeated
