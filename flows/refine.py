"""Landed text -> typed, validated raw rows, set-based in the warehouse.

The loader lands each file's cells as text (COPY on PostgreSQL, `read_csv` on DuckDB);
this module writes the SQL that types them and evaluates the Great Expectations suite
over them in one pass. The suites in `expectations/` stay the specification: each
expectation type they use has a SQL form here, and `tests/test_refine.py` checks that
the warehouse and GX's own engine find the same rows on the same batch.

One SQL text serves both warehouses; only the regex operator and the date parser differ.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from flows import validate

# The cell as written, trimmed; empty means absent.
BLANKS = "' ' || chr(9) || chr(160)"

# dd/mm/yyyy[ HH:MM[:SS]] naming a day that exists (leap years included), in the years
# pandas timestamps hold (1678-2261), so that files and the API read dates alike.
_YEAR = r"(16(7[89]|[89][0-9])|1[7-9][0-9]{2}|2[01][0-9]{2}|22[0-5][0-9]|226[01])"
_LEAP = r"((1[6-9]|2[0-2])(0[48]|[2468][048]|[13579][26])|2000)"
_DAY_MONTH = (
    r"((0?[1-9]|1[0-9]|2[0-8])/(0?[1-9]|1[0-2])|(29|30)/(0?[13-9]|1[0-2])|31/(0?[13578]|1[02]))"
)
_CLOCK = r"( ([01]?[0-9]|2[0-3]):[0-5]?[0-9](:[0-5]?[0-9])?)?"
DATETIME_TEXT = rf"^({_DAY_MONTH}/{_YEAR}|29/0?2/{_LEAP}){_CLOCK}$"
INTEGER_TEXT = r"^[+-]?[0-9]{1,9}$"  # what typed_expression's integer test accepts
AMOUNT_TEXT = r"^([0-9]{1,15}|[0-9]{1,3}([.][0-9]{3}){1,4})$"


@dataclass(frozen=True)
class Dialect:
    name: str

    def matches(self, expr: str, pattern: str) -> str:
        """Search semantics on both engines, as GX's regex expectations use."""
        quoted = pattern.replace("'", "''")
        if self.name == "duckdb":
            return f"regexp_matches({expr}, '{quoted}')"
        return f"({expr} ~ '{quoted}')"


def timestamp_of(v: str, d: Dialect) -> str:
    """Text DATETIME_TEXT accepts -> timestamp; anything else -> NULL, never an error.

    PostgreSQL casts it (the refine transaction sets DateStyle DMY); DuckDB parses it
    with strptime. The pattern has already ruled out every impossible day.
    """
    if d.name == "duckdb":
        parsed = f"try_strptime({v}, ['%d/%m/%Y %H:%M:%S', '%d/%m/%Y %H:%M', '%d/%m/%Y'])"
    else:
        parsed = f"cast({v} as timestamp)"
    return f"case when {d.matches(v, DATETIME_TEXT)} then {parsed} end"


def typed_expression(kind: str, v: str, d: Dialect) -> str:
    if kind == "datetime":
        return timestamp_of(v, d)
    if kind == "date":
        return f"cast({timestamp_of(v, d)} as date)"
    if kind == "integer":
        # INTEGER_TEXT spelt without a regex: integer cells are many, regexes cost per cell
        digits = "translate({}, '0123456789', '') = ''"
        unsigned = f"length({v}) <= 9 and {digits.format(v)}"
        signed = (
            f"length({v}) between 2 and 10 and substr({v}, 1, 1) in ('+', '-')"
            f" and {digits.format(f'substr({v}, 2)')}"
        )
        return f"case when {unsigned} or {signed} then cast({v} as integer) end"
    if kind == "amount":
        return (
            f"case when {d.matches(v, AMOUNT_TEXT)} then cast(replace({v}, '.', '') as bigint) end"
        )
    raise ValueError(f"no SQL type for column kind {kind!r}")


def trimmed(column: str) -> str:
    return f"nullif(trim(both {BLANKS} from {column}), '')"


def typed_select(source, landing: str, files: str, ordinal: str, d: Dialect) -> str:
    """The landed rows of one group, typed, with where each came from.

    `source` is a file source module (TYPES, DAYS). Text columns keep the trimmed cell;
    other columns hold the typed value beside `<col>__text`, the cell as written.
    A row's number is the one the careful reader gave it, or, for rows COPY landed
    straight from a file, its place in the file (header = 1).
    """
    inner = [
        f"{trimmed(c)} as {c if k in ('text', 'unit') else c + '__text'}"
        for c, k in source.TYPES.items()
    ]
    outer = []
    for column, kind in source.TYPES.items():
        if kind == "text":
            outer.append(f"l.{column}")
        elif kind == "unit":  # the folder names the unit when the row leaves it empty
            outer.append(f"coalesce(l.{column}, f.unit_folder) as {column}")
        else:
            outer.append(f"{typed_expression(kind, f'l.{column}__text', d)} as {column}")
            outer.append(f"l.{column}__text")
    days = "".join(f", cast({column} as date) as {day}" for day, column in source.DAYS.items())
    return (
        f"select *{days} from (\n"
        "select f.file_id, f.file_path, f.file_date, f.unit_folder, f.load_id,"
        " cast(coalesce(l.row_number, l.ordinal - o.first_ordinal + 2) as integer)"
        " as row_number,\n  "
        + ",\n  ".join(outer)
        + f"\nfrom (select file_id, row_number, {ordinal} as ordinal, "
        + ", ".join(inner)
        + f" from {landing}) l\njoin {files} f on f.file_id = l.file_id"
        + f"\nleft join (select file_id, min({ordinal}) as first_ordinal from {landing}"
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


def rules(suite_name: str, source, d: Dialect) -> list[Rule]:
    """The stored GX suite as SQL predicates, one per expectation."""
    suite = json.loads((validate.EXPECTATIONS_DIR / f"{suite_name}.json").read_text("utf-8"))
    out = []
    for number, e in enumerate(suite["expectations"]):
        kind, kw = e["type"], e["kwargs"]
        column = kw.get("column") or kw.get("column_A")
        where = _condition(kw.get("row_condition"))
        if kind == "expect_column_values_to_not_be_null":
            failed = f"{where} and {column} is null"
        elif kind == "expect_column_values_to_be_in_set":
            values = ", ".join(_literal(v) for v in kw["value_set"])
            failed = f"{where} and {column} is not null and {column} not in ({values})"
        elif kind == "expect_column_values_to_match_regex":
            failed = f"{where} and {column} is not null and not {d.matches(column, kw['regex'])}"
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
            )
        )
    return out


def findings_select(typed: str, record_code: str, rule_list: list[Rule]) -> str:
    """Every (row, rule) broken in one scan: rows breaking none are dropped first."""
    values = ",\n    ".join(
        f"({r.number}, {r.failed}, cast({r.value} as varchar))" for r in rule_list
    )
    any_failed = " or ".join(f"({r.failed})" for r in rule_list)
    return (
        f"select t.file_id, t.row_number, t.file_path, t.load_id, t.{record_code} as record_code,"
        " r.rule_no, r.value\n"
        f"from (select * from {typed} where {any_failed}) t\n"
        f"cross join lateral (values\n    {values}\n) as r(rule_no, failed, value)\n"
        "where r.failed"
    )
