"""Property-based tests (hypothesis) of the parsers and of the timeliness rules.

- the file parsers (`flows.sources.common`): header matching, decoding, dates and
  numbers round-trip, never raise, and give NFC text;
- the warehouse's SQL typing (`flows.refine.typed_expression`, run in DuckDB) reads every
  string as the pandas parsers do (the file path types in SQL, the API path in pandas);
- the timeliness of one dossier (DOMAIN.md §3): a small Python reference of the rules
  against the dbt macros and fct_dossier's classification, rendered and run in DuckDB.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from pathlib import Path

import duckdb
import jinja2
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flows import simulate
from flows.refine import typed_expression
from flows.sources import document_files, dossier_files, task_files
from flows.sources.common import (
    YEARS,
    FileUnreadable,
    _header_names,
    decode,
    header_key,
    parse_amounts,
    parse_dates,
    parse_datetimes,
    parse_integers,
)

DBT = Path(__file__).resolve().parents[1] / "dbt_project"
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KINDS = (dossier_files, task_files, document_files)
HEADERS = sorted({h for kind in KINDS for h in kind.COLUMNS})
VIETNAMESE = "aàáảãạăằắẳẵặâầấẩẫậbcdđeèéẻẽẹêềếểễệghiìíỉĩịklmnoòóỏõọôồốổỗộơờớởỡợ"
VIETNAMESE += "pqrstuùúủũụưừứửữựvxyỳýỷỹỵ"
VIETNAMESE += VIETNAMESE.upper()
BLANKS = [" ", "  ", "\t", "\u00a0", "\u3000", " \t "]


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


# -- headers


@st.composite
def header_variant(draw, header: str) -> str:
    """The header as a desk's software may write it: any case, spacing, Unicode form."""
    cased = "".join(c.upper() if draw(st.booleans()) else c.lower() for c in header)
    words = cased.split()
    spaced = draw(st.sampled_from(["", *BLANKS]))
    for word in words:
        spaced += word + draw(st.sampled_from(BLANKS))
    spaced = spaced if draw(st.booleans()) else spaced.rstrip()
    form = draw(st.sampled_from(["NFC", "NFD", "NFKC", "NFKD"]))
    return unicodedata.normalize(form, spaced)


@PROPERTY
@given(st.data())
def test_every_contract_header_matches_whatever_its_case_spacing_and_form(data):
    header = data.draw(st.sampled_from(HEADERS))
    variant = data.draw(header_variant(header))
    assert header_key(variant) == header_key(header)
    assert header_key("\ufeff" + variant) == header_key(header)  # a BOM stuck to the first


def test_contract_headers_have_distinct_keys():
    for kind in KINDS:
        keys = [header_key(h) for h in kind.COLUMNS]
        assert len(set(keys)) == len(keys), kind.__name__


@PROPERTY
@given(st.data())
def test_a_plain_header_line_in_any_order_and_form_maps_to_the_canonical_names(data):
    kind = data.draw(st.sampled_from(KINDS))
    order = data.draw(st.permutations(list(kind.COLUMNS)))
    cells = [data.draw(header_variant(h)).replace(",", "") for h in order]
    line = ("\ufeff" if data.draw(st.booleans()) else "") + ",".join(cells)
    names = _header_names(line.encode("utf-8"), tuple(kind.COLUMNS.items()))
    assert names == tuple(kind.COLUMNS[h] for h in order)
    # a repeated or unknown header sends the file to the careful reader
    repeated = line + "," + cells[0]
    assert _header_names(repeated.encode("utf-8"), tuple(kind.COLUMNS.items())) is None
    unknown = line + ",Ghi chú"
    assert _header_names(unknown.encode("utf-8"), tuple(kind.COLUMNS.items())) is None


@PROPERTY
@given(st.text(max_size=40))
def test_header_key_never_raises_and_ignores_unicode_form_and_spacing(text):
    key = header_key(text)
    assert key == header_key(unicodedata.normalize("NFD", text))
    assert key == header_key(" \t" + "  ".join(text.split()) + "\u00a0")
    assert key == key.strip() and "  " not in key


# -- decoding


@PROPERTY
@given(st.text(max_size=300), st.sampled_from(["utf-8", "utf-8-sig", "nfd"]))
def test_utf8_text_decodes_to_its_nfc_form(text, form):
    text = text.lstrip("\ufeff")  # a leading U+FEFF is a byte order mark, not text
    raw = unicodedata.normalize("NFD", text) if form == "nfd" else text
    content = raw.encode("utf-8-sig" if form == "utf-8-sig" else "utf-8")
    if b"\x00" in content[:4096]:
        with pytest.raises(FileUnreadable) as caught:
            decode(content)
        assert caught.value.rule == "file_not_text"
        return
    decoded, encoding = decode(content)
    assert decoded == nfc(text)
    assert encoding == ("utf-8-sig" if form == "utf-8-sig" else "utf-8")


@PROPERTY
@given(st.text(alphabet=VIETNAMESE + "0123456789 ,.;:-/()\"'\n", max_size=200))
def test_windows_1258_text_decodes_to_its_nfc_form(text):
    """Windows-1258 writes tones as combining marks: the text comes back composed."""
    content = simulate.windows_1258_text(text).encode("cp1258")
    decoded, encoding = decode(content)
    assert decoded == nfc(text)
    assert encoding == ("utf-8" if text.isascii() else "cp1258")
    assert unicodedata.is_normalized("NFC", decoded)


@PROPERTY
@given(st.binary(max_size=600))
def test_decode_of_any_bytes_gives_nfc_text_or_says_why_not(content):
    try:
        decoded, encoding = decode(content)
    except FileUnreadable as exc:
        assert exc.rule in ("file_not_text", "file_encoding")
        assert exc.message_vi
    else:
        assert encoding in ("utf-8", "utf-8-sig", "cp1258")
        assert unicodedata.is_normalized("NFC", decoded)


# -- dates and numbers: round trips

IN_YEARS = st.datetimes(dt.datetime(YEARS[0], 1, 1), dt.datetime(YEARS[1], 12, 31, 23, 59, 59))
WRITTEN = [  # how a cell may write an instant, and what of it the format keeps
    ("{t:%d/%m/%Y %H:%M:%S}", lambda t: t),
    ("{t:%d/%m/%Y %H:%M}", lambda t: t.replace(second=0)),
    ("{t:%d/%m/%Y}", lambda t: t.replace(hour=0, minute=0, second=0)),
    ("{t.day}/{t.month}/{t:%Y} {t.hour}:{t.minute}", lambda t: t.replace(second=0)),
    ("{t.day}/{t.month}/{t:%Y} {t.hour}:{t.minute}:{t.second}", lambda t: t),
    ("{t.day}/{t.month}/{t:%Y}", lambda t: t.replace(hour=0, minute=0, second=0)),
]


@PROPERTY
@given(st.lists(st.tuples(IN_YEARS.map(lambda t: t.replace(microsecond=0)),
                          st.sampled_from(WRITTEN)), min_size=1, max_size=20))  # fmt: skip
def test_datetimes_round_trip_in_every_written_form(cases):
    text = pd.Series([form.format(t=t) for t, (form, _) in cases], dtype=object)
    want = [keep(t) for t, (_, keep) in cases]
    assert list(parse_datetimes(text)) == [pd.Timestamp(t) for t in want]
    assert list(parse_dates(text)) == [pd.Timestamp(t.date()) for t in want]
    assert sql_typed("datetime", list(text)) == [pd.Timestamp(t) for t in want]


@PROPERTY
@given(st.lists(st.one_of(st.datetimes(dt.datetime(1000, 1, 1), dt.datetime(YEARS[0] - 1, 12, 31)),
                          st.datetimes(dt.datetime(YEARS[1] + 1, 1, 1), dt.datetime(9999, 12, 31))),
                min_size=1, max_size=10))  # fmt: skip
def test_dates_outside_the_years_a_record_may_name_are_unreadable(instants):
    text = [f"{t:%d/%m/%Y %H:%M}" for t in instants]
    assert parse_datetimes(pd.Series(text, dtype=object)).isna().all()
    assert sql_typed("datetime", text) == [None] * len(text)


@PROPERTY
@given(st.lists(st.integers(-(10**9) + 1, 10**9 - 1), min_size=1, max_size=20), st.data())
def test_integers_round_trip(numbers, data):
    text = [
        data.draw(st.sampled_from(["{}", "+{}" if n >= 0 else "{}", "{:09d}" if n >= 0 else "{}"]))
        .format(n) for n in numbers
    ]  # fmt: skip
    assert list(parse_integers(pd.Series(text, dtype=object))) == numbers
    assert sql_typed("integer", text) == numbers


@PROPERTY
@given(st.lists(st.integers(-(10**15) + 1, 10**15 - 1), min_size=1, max_size=20), st.data())
def test_amounts_round_trip_with_or_without_thousands_separators(numbers, data):
    text = [
        f"{n:,}".replace(",", ".") if abs(n) >= 1000 and data.draw(st.booleans()) else str(n)
        for n in numbers
    ]
    assert list(parse_amounts(pd.Series(text, dtype=object))) == numbers
    assert sql_typed("amount", text) == numbers


# -- the warehouse's SQL typing reads every string as pandas does

_CON: list = []


def sql_typed(kind: str, values: list[str]) -> list:
    """`typed_expression(kind)` over the values, in DuckDB (one connection per module)."""
    if not _CON:
        _CON.append(duckdb.connect())
    con = _CON[0]
    frame = pd.DataFrame({"i": range(len(values)), "v": pd.Series(values, dtype=object)})
    con.register("cells", frame)
    try:
        got = con.execute(f"select {typed_expression(kind, 'v')} from cells order by i").fetchall()
    finally:
        con.unregister("cells")
    number = kind in ("integer", "amount")
    return [None if v is None else int(v) if number else pd.Timestamp(v) for (v,) in got]


def pandas_typed(kind: str, values: list[str]) -> list:
    parse = {"datetime": parse_datetimes, "date": parse_dates,
             "integer": parse_integers, "amount": parse_amounts}[kind]  # fmt: skip
    out = parse(pd.Series(values, dtype=object))
    return [None if pd.isna(v) else int(v) if kind in ("integer", "amount") else pd.Timestamp(v)
            for v in out]  # fmt: skip


NOISE = list("0123456789/:.+- ") + ["٢", "１", "\t", "\n", "\r", "\x0b", "\xa0", "\u2003", "e", "Z"]


@st.composite
def near_miss(draw, kind: str) -> str:
    """A value of the kind, written well, then perhaps changed a character or two."""
    if kind in ("datetime", "date"):
        t = draw(st.datetimes(dt.datetime(1880, 1, 1), dt.datetime(2120, 12, 31)))
        form, _ = draw(st.sampled_from(WRITTEN))
        text = form.format(t=t)
    elif kind == "integer":
        text = str(draw(st.integers(-(10**10), 10**10)))
    else:
        n = draw(st.integers(-(10**16), 10**16))
        text = f"{n:,}".replace(",", ".") if draw(st.booleans()) else str(n)
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(text)))
        char = draw(st.sampled_from(NOISE))
        how = draw(st.sampled_from(["insert", "replace", "delete"]))
        if how == "insert":
            text = text[:at] + char + text[at:]
        elif how == "replace":
            text = text[:at] + char + text[at + 1 :]
        else:
            text = text[:at] + text[at + 1 :]
    return text


def cell_strings(kind: str):
    # NUL never reaches typing: the careful reader sets a row holding one aside
    cell = st.one_of(near_miss(kind), st.text(max_size=20)).map(lambda s: s.replace("\x00", ""))
    return st.lists(cell, min_size=1, max_size=30)


@pytest.mark.parametrize("kind", ["datetime", "date", "integer", "amount"])
def test_sql_typing_agrees_with_the_pandas_parsers_on_any_string(kind):
    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(cell_strings(kind))
    @example(["02/04/2025 08:00:60", "٢/4/2025", "2/4/2025\u00a008:00", " 2/4/2025\x0b", "+5",
              "1.000.000", "50,000", "1e3", "0x1F", "-0", "00042", "２"])  # fmt: skip
    def agree(values):
        assert sql_typed(kind, values) == pandas_typed(kind, values), values

    agree()


@pytest.mark.parametrize("word", ["epoch", "infinity", "-Infinity", " EPOCH\t"])
def test_sql_typing_reads_no_date_in_special_words(word):
    """DuckDB's strptime reads 'epoch' and 'infinity' as dates; the typing must not."""
    assert pandas_typed("datetime", [word]) == pandas_typed("date", [word]) == [None]
    assert sql_typed("datetime", [word]) == [None]


# -- timeliness of one dossier (DOMAIN.md §3)

AS_OF = dt.date(2025, 6, 30)
SET_ASIDE = {1: "registered", 3: "refused", 7: "withdrawn", 8: "stopped"}


def reference_timeliness(d: dict, as_of: dt.date) -> str:
    """DOMAIN.md §3, at day granularity, in plain Python.

    finished = the first of processing-finished and returned, for statuses 9 and 10 (both
    empty: the last change, else reception; never before reception); a missing due date
    counts on time (int_dossier__enriched and the macros' documented choices)."""
    status = d["status_code"]
    if status in SET_ASIDE:
        return SET_ASIDE[status]
    received = d["received_at"].date()
    due = d["due_at"].date() if d["due_at"] is not None else None
    finished = None
    if status in (9, 10):
        ends = [t.date() for t in (d["finished_at"], d["returned_at"]) if t is not None]
        first = min(ends) if ends else (d["updated_at"] or d["received_at"]).date()
        finished = max(first, received)
    if finished is not None and finished <= as_of:
        if (d["supplement_count"] or 0) > 1:
            return "late"  # the 766 rule: more than one supplement request
        if due is None or finished == due:
            return "on_time"
        return "early" if finished < due else "late"
    return "in_progress_on_time" if due is None or due >= as_of else "in_progress_overdue"


def _model_sql(path: str, pattern: str) -> str:
    text = (DBT / path).read_text(encoding="utf-8")
    found = re.search(pattern, text, re.S)
    assert found, f"{path}: no {pattern!r} (the model changed: update this test)"
    return found.group(0)


def classification_sql(as_of: dt.date) -> str:
    """fct_dossier's classification over int_dossier__enriched's finished date, rendered
    with the real macros (dbt's Jinja is Jinja: only the macros are needed)."""
    macros = (DBT / "macros" / "timeliness.sql").read_text(encoding="utf-8")
    case = _model_sql(
        "models/marts/dossier/fct_dossier.sql",
        r"case\s+when dossiers\.status_code = 1 .*?end as timeliness",
    )
    finished = _model_sql(
        "models/intermediate/dossier/int_dossier__enriched.sql",
        r"case\s+when dossiers\.status_code in \(9, 10\).*?end as finished_date",
    )
    rendered = (
        jinja2.Environment()
        .from_string(macros + case)
        .render(as_of=f"cast('{as_of.isoformat()}' as date)")
    )
    return (
        f"select i, {rendered.strip()} from (select dossiers.*, "
        "cast(dossiers.due_at as date) as due_date, "
        f"{finished} from dossiers) as dossiers order by i"
    )


# instants a few days around the as-of date, so that equal days and boundaries are common
INSTANT = st.tuples(st.integers(-6, 6), st.sampled_from([0, 1, 7 * 60, 17 * 60, 23 * 60 + 59])).map(
    lambda p: dt.datetime(2025, 6, 30) + dt.timedelta(days=p[0], minutes=p[1])
)
MAYBE = st.one_of(st.none(), INSTANT, INSTANT)
DOSSIER = st.fixed_dictionaries(
    {
        "status_code": st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 9, 10, 9, 10]),
        "received_at": INSTANT,
        "due_at": MAYBE,
        "finished_at": MAYBE,
        "returned_at": MAYBE,
        "updated_at": MAYBE,
        "supplement_count": st.sampled_from([None, 0, 1, 2, 3]),
    }
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(DOSSIER, min_size=30, max_size=60))
def test_timeliness_in_the_warehouse_follows_domain_rules(dossiers):
    if not _CON:
        _CON.append(duckdb.connect())
    con = _CON[0]
    frame = pd.DataFrame(dossiers)
    for column in ("received_at", "due_at", "finished_at", "returned_at", "updated_at"):
        frame[column] = pd.to_datetime(frame[column])
    frame["supplement_count"] = frame["supplement_count"].astype("Int64")
    frame.insert(0, "i", range(len(frame)))
    con.register("dossiers", frame)
    try:
        got = [label for _, label in con.execute(classification_sql(AS_OF)).fetchall()]
    finally:
        con.unregister("dossiers")
    want = [reference_timeliness(d, AS_OF) for d in dossiers]
    assert got == want


def test_the_two_macros_alone_follow_the_rules():
    """Every combination of days around a due date: exhaustive, the space is small."""
    days = [None, *(dt.date(2025, 6, 28) + dt.timedelta(days=n) for n in range(5))]
    cases = [
        (finished, due, supplements, evaluation)
        for finished in days[1:]
        for due in days
        for supplements in (None, 0, 1, 2, 3)
        for evaluation in days[1:]
    ]
    macros = (DBT / "macros" / "timeliness.sql").read_text(encoding="utf-8")
    sql = (
        jinja2.Environment()
        .from_string(
            macros + "select i, {{ resolved_timeliness('f', 'd', 's') }}, "
            "{{ in_progress_timeliness('d', 'e') }} from cases order by i"
        )
        .render()
    )
    frame = pd.DataFrame(cases, columns=["f", "d", "s", "e"])
    for column in "fde":
        frame[column] = pd.to_datetime(frame[column]).dt.date
    frame["s"] = frame["s"].astype("Int64")
    frame.insert(0, "i", range(len(frame)))
    if not _CON:
        _CON.append(duckdb.connect())
    _CON[0].register("cases", frame)
    try:
        got = [(r, p) for _, r, p in _CON[0].execute(sql).fetchall()]
    finally:
        _CON[0].unregister("cases")
    want = []
    for finished, due, supplements, evaluation in cases:
        if (supplements or 0) > 1:
            resolved = "late"  # the 766 rule, whatever the dates
        elif due is None or finished == due:
            resolved = "on_time"
        else:
            resolved = "early" if finished < due else "late"
        # not finished by E: within the deadline while due >= E (no due date: within)
        on_time = due is None or due >= evaluation
        want.append((resolved, "in_progress_on_time" if on_time else "in_progress_overdue"))
    assert got == want
