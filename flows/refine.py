"""Landed text -> typed, validated raw rows, set-based in DuckDB.

The loader lands each group of files' cells as text in a DuckDB connection (the
warehouse itself, or a private in-memory one when the warehouse is PostgreSQL); this
module writes the SQL that types them and evaluates the Great Expectations suite over
them in one pass. The suites in `expectations/` stay the specification: each
expectation type they use has a SQL form here, and `tests/test_refine.py` checks that
this SQL and GX's own engine find the same rows on the same batch.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from flows import validate
from flows.sources.common import DATE_FORMATS, YEARS

AMOUNT_TEXT = r"^-?([0-9]{1,15}|[0-9]{1,3}([.][0-9]{3}){1,4})$"  # a sign, for the fee >= 0 rule


def matches(expr: str, pattern: str) -> str:
    """Search semantics, as GX's regex expectations use."""
    return f"regexp_matches({expr}, '{pattern.replace(chr(39), chr(39) * 2)}')"


def parsed_timestamp(v: str) -> str:
    """dd/mm/yyyy[ HH:MM[:SS]] -> timestamp, else NULL; `timestamp_of` checks the years.

    strptime rules out impossible days (31/04, 29/02 of a common year) and hours. It also
    reads the words 'epoch' and 'infinity': a date has digits.
    """
    formats = ", ".join(f"'{f}'" for f in DATE_FORMATS)
    return f"case when regexp_matches({v}, '[0-9]') then try_strptime({v}, [{formats}]) end"


def within_years(p: str) -> str:
    """A parsed timestamp naming a real instant within YEARS, else NULL."""
    low, high = YEARS
    return (
        f"case when {p} >= timestamp '{low:04d}-01-01' "
        f"and {p} < timestamp '{high + 1:04d}-01-01' then {p} end"
    )


def timestamp_of(v: str) -> str:
    """dd/mm/yyyy[ HH:MM[:SS]] naming a real instant within YEARS -> timestamp, else NULL."""
    return within_years(parsed_timestamp(v))


PARSED = {"datetime": parsed_timestamp, "date": parsed_timestamp}


def checked_expression(kind: str, p: str) -> str:
    """The typed value of a datetime or date column from its `parsed_timestamp`."""
    return within_years(p) if kind == "datetime" else f"cast({within_years(p)} as date)"


def typed_expression(kind: str, v: str) -> str:
    if kind in PARSED:
        return checked_expression(kind, PARSED[kind](v))
    if kind == "integer":
        return (
            f"case when regexp_full_match({v}, '[+-]?[0-9]{{1,9}}') then cast({v} as integer) end"
        )
    if kind == "amount":
        return f"case when {matches(v, AMOUNT_TEXT)} then cast(replace({v}, '.', '') as bigint) end"
    raise ValueError(f"no SQL type for column kind {kind!r}")


def typed_select(source, landing: str, files: str) -> str:
    """The landed rows of one group, typed, with where each came from.

    `source` is a file source module (TYPES, DAYS). Cells arrive stripped (plain files
    have nothing to strip, the careful reader strips), an empty one as NULL. Text columns
    keep the cell; other columns hold the typed value beside `<col>__text`, the cell as
    written.
    A row's number is the one the careful reader gave it, or, for rows landed straight
    from a file, its place in the file (header = 1): appends keep the reader's order.
    """
    inner = [
        f"{c} as {c if k in ('text', 'unit') else c + '__text'}" for c, k in source.TYPES.items()
    ]
    # a date is parsed once here: an expression repeated inside a CASE is evaluated again
    inner += [f"{PARSED[k](c)} as {c}__parsed" for c, k in source.TYPES.items() if k in PARSED]
    outer = []
    for column, kind in source.TYPES.items():
        if kind == "text":
            outer.append(f"l.{column}")
        elif kind == "unit":  # the folder names the unit when the row leaves it empty
            outer.append(f"coalesce(l.{column}, f.unit_folder) as {column}")
        elif kind in PARSED:
            outer.append(f"{checked_expression(kind, f'l.{column}__parsed')} as {column}")
            outer.append(f"l.{column}__text")
        else:
            outer.append(f"{typed_expression(kind, f'l.{column}__text')} as {column}")
            outer.append(f"l.{column}__text")
    days = "".join(f", cast({column} as date) as {day}" for day, column in source.DAYS.items())
    return (
        f"select *{days} from (\n"
        "select f.file_id, f.file_path, f.file_date, f.unit_folder, f.load_id,"
        " cast(coalesce(l.row_number, l.ordinal - o.first_ordinal + 2) as integer)"
        " as row_number,\n  "
        + ",\n  ".join(outer)
        + "\nfrom (select file_id, row_number, rowid as ordinal, "
        + ", ".join(inner)
        + f" from {landing}) l\njoin {files} f on f.file_id = l.file_id"
        + f"\nleft join (select file_id, min(rowid) as first_ordinal from {landing}"
        " where row_number is null group by file_id) o on o.file_id = l.file_id\n) typed"
    )


@dataclass(frozen=True)
class Rule:
    number: int
    rule: str
    severity: str
    column_name: str | None
    message_vi: str
    failed: str  # SQL: true when the row breaks the rule
    value: str  # SQL: the cell the finding shows
    window: str | None = None  # SQL: a per-row window the rule reads as column w<number>


# Expectations on reference data or several days, run in the warehouse after loading
# (flows.audit); the rest are row rules, run here.
WAREHOUSE_LEVEL = {"unexpected_rows_expectation"}


def _condition(condition: dict | str | None) -> str:
    """The only row condition the suites use: `<col>__text != ""` (the cell was written)."""
    if not condition:
        return "true"
    text = condition.get("pass_through_filter", "") if isinstance(condition, dict) else condition
    match = re.fullmatch(r'(\w+) != ""', text.strip())
    if not match:
        raise ValueError(f"row condition {text!r} has no SQL form")
    return f"{match.group(1)} is not null"


def _literal(value) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"value {value!r} has no SQL form")
    return str(value) if not isinstance(value, str) else "'" + value.replace("'", "''") + "'"


def _shown(column: str, source) -> str:
    """The cell a finding on `column` shows: as written, whatever its type."""
    written = {c for c, k in source.TYPES.items() if k not in ("text", "unit")}
    if column in written:
        return f"{column}__text"
    if column in source.DAYS:
        return f"{source.DAYS[column]}__text"
    return f"cast({column} as varchar)"


def rules(suite_name: str, source) -> list[Rule]:
    """The stored GX suite as SQL predicates, one per expectation."""
    suite = json.loads((validate.EXPECTATIONS_DIR / f"{suite_name}.json").read_text("utf-8"))
    out = []
    for number, e in enumerate(suite["expectations"]):
        kind, kw = e["type"], e["kwargs"]
        if kind in WAREHOUSE_LEVEL:
            continue
        column = e["meta"].get("value_column") or kw.get("column") or kw.get("column_A")
        where = _condition(kw.get("row_condition"))
        window = None
        if kind == "expect_compound_columns_to_be_unique":
            # GX flags every row of a repeated combination; rows missing a value are unique
            keys = ["file_id" if c == "file_path" else c for c in kw["column_list"]]
            present = " and ".join(f"{k} is not null" for k in keys)
            window = f"case when {present} then count(*) over (partition by {', '.join(keys)}) end"
            failed = f"w{number} > 1"
        elif kind == "expect_column_values_to_not_be_null":
            failed = f"{where} and {column} is null"
        elif kind == "expect_column_values_to_be_in_set":
            values = ", ".join(_literal(v) for v in kw["value_set"])
            failed = f"{where} and {column} is not null and {column} not in ({values})"
        elif kind == "expect_column_values_to_match_regex":
            failed = f"{where} and {column} is not null and not {matches(column, kw['regex'])}"
        elif kind == "expect_column_values_to_be_between":
            bounds = []
            if kw.get("min_value") is not None:
                bounds.append(f"{column} < {_literal(kw['min_value'])}")
            if kw.get("max_value") is not None:
                bounds.append(f"{column} > {_literal(kw['max_value'])}")
            failed = f"{where} and {column} is not null and ({' or '.join(bounds)})"
        elif kind in (
            "expect_column_pair_values_to_be_equal",
            "expect_column_pair_values_a_to_be_greater_than_b",
        ):
            if kw.get("ignore_row_if") != "either_value_is_missing":
                raise ValueError(f"{kind}: only ignore_row_if=either_value_is_missing has SQL")
            a, b = kw["column_A"], kw["column_B"]
            if kind == "expect_column_pair_values_to_be_equal":
                broken = f"{a} <> {b}"
            else:
                broken = f"not ({a} {'>=' if kw.get('or_equal') else '>'} {b})"
            failed = f"{where} and {a} is not null and {b} is not null and {broken}"
        else:
            raise ValueError(f"expectation {kind} has no SQL form yet")
        out.append(
            Rule(
                number=number,
                rule=e["meta"]["rule"],
                severity=e["severity"],
                column_name=e["meta"].get("column"),
                message_vi=e["meta"]["message_vi"],
                failed=f"coalesce({failed}, false)",
                value=_shown(column, source),
                window=window,
            )
        )
    return out


def findings_select(typed: str, record_code: str, rule_list: list[Rule]) -> str:
    """Every (row, rule) broken in one scan: rows breaking none are dropped first."""
    values = ",\n    ".join(
        f"({r.number}, {r.failed}, cast({r.value} as varchar))" for r in rule_list
    )
    any_failed = " or ".join(f"({r.failed})" for r in rule_list)
    windows = "".join(f", {r.window} as w{r.number}" for r in rule_list if r.window)
    return (
        f"select t.file_id, t.row_number, t.file_path, t.load_id, t.{record_code} as record_code,"
        " r.rule_no, r.value\n"
        f"from (select * from (select *{windows} from {typed}) where {any_failed}) t\n"
        f"cross join lateral (values\n    {values}\n) as r(rule_no, failed, value)\n"
        "where r.failed"
    )
