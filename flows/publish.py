"""Publish: copy the freshly built marts into schema `marts` in one transaction.

An incremental mart with a ledger of the keys its builds changed (fct_dossier) gets just
those rows; every other mart is copied whole.

BI reads `marts` only. Until the transaction commits it sees yesterday's tables, whole;
after it, today's, whole: never a mix, never a half-built table.
"""

from __future__ import annotations

from flows import failpoints, progress
from flows.audit import mart_counts
from flows.transform import BUILD_SCHEMA, MARTS
from flows.warehouse import Warehouse

# dbt's marts and the checks table the audit writes beside them
PUBLISHED = [*MARTS, "data_quality_checks"]
WHOLE = "*whole*"  # the dbt macro whole_marker()


def publish(warehouse: Warehouse, marts: list[str] = PUBLISHED) -> dict[str, int]:
    counts = {}
    with warehouse.transaction() as conn:
        # the audit counted the built marts just before: publish copies those rows
        counted = mart_counts(conn, warehouse, BUILD_SCHEMA)
        conn.execute("create schema if not exists marts")
        progress.total(len(marts), "marts")
        for mart in marts:
            built = warehouse.columns_of(conn, BUILD_SCHEMA, mart)
            if not built:
                raise RuntimeError(f"mart {mart} was not built in {BUILD_SCHEMA}")
            current = warehouse.columns_of(conn, "marts", mart)
            if current != built:
                # New or changed shape: replace the table (still inside the transaction).
                conn.execute(f"drop table if exists marts.{mart}")
                conn.execute(
                    f"create table marts.{mart} as select * from {BUILD_SCHEMA}.{mart} where 1 = 0"
                )
            # delete + insert keeps readers on the old rows until commit (MVCC), unlike truncate.
            ledger = f"{BUILD_SCHEMA}.{mart}__unpublished"
            ledger_columns = warehouse.columns_of(conn, BUILD_SCHEMA, f"{mart}__unpublished")
            key = _changed_key(conn, ledger, ledger_columns) if current == built else None
            if key is None:
                conn.execute(f"delete from marts.{mart}")
                conn.execute(f"insert into marts.{mart} select * from {BUILD_SCHEMA}.{mart}")
            else:  # an incremental mart: just the rows its builds changed since the last publish
                listed = f"{key} in (select {key} from {ledger})"
                conn.execute(f"delete from marts.{mart} where {listed}")
                conn.execute(
                    f"insert into marts.{mart} select * from {BUILD_SCHEMA}.{mart} where {listed}"
                )
            if ledger_columns:
                conn.execute(f"delete from {ledger}")
                if warehouse.kind == "postgres":
                    _index_key(conn, mart, ledger_columns[0], analyze=key is None)
            counts[mart] = counted.get(mart)
            if counts[mart] is None:  # not counted by an audit (the checks table itself)
                counts[mart] = conn.fetchall(f"select count(*) from marts.{mart}")[0][0]
            if warehouse.kind == "postgres":
                _copy_comments(conn, f"{BUILD_SCHEMA}.{mart}", f"marts.{mart}")
            failpoints.hit("publish.mart_copied")  # some marts copied, not yet committed
            progress.advance()
    return counts


def _changed_key(conn, ledger: str, columns: list[str]) -> str | None:
    """The ledger's key column when only its keys changed since the last publish; None
    when the mart is copied whole: no ledger, or a whole build since (the dbt macro
    record_unpublished_dossiers, dbt_project/macros/incremental_periods.sql)."""
    if len(columns) != 1:
        return None
    key = columns[0]
    if conn.fetchall(f"select count(*) from {ledger} where {key} = %s", [WHOLE])[0][0]:
        return None
    return key


def _index_key(conn, mart: str, column: str, analyze: bool) -> None:
    """The next night's delete finds its rows by key, not by reading them all: a unique
    index (PostgreSQL then knows a key is one row; with the plain index it once had, and
    no statistics on a table just copied, it planned 4.6 s of hash join for 120,000 keys
    at 10,000,000 dossiers), statistics after a whole copy."""
    conn.execute(f"drop index if exists marts.{mart}__{column}")  # the plain one it replaces
    conn.execute(
        f"create unique index if not exists {mart}__{column}_key on marts.{mart} ({column})"
    )
    if analyze:
        conn.execute(f"analyze marts.{mart}")


def _quoted(text: str | None) -> str:
    return "null" if text is None else "'" + text.replace("'", "''") + "'"


def _copy_comments(conn, source: str, target: str) -> None:
    """The bilingual descriptions dbt wrote on the built table, onto the published one
    (BI tools show them beside each column)."""
    table = conn.fetchall("select obj_description(%s::regclass, 'pg_class')", [source])[0][0]
    conn.execute(f"comment on table {target} is {_quoted(table)}")
    for column, text in conn.fetchall(
        "select attname, col_description(attrelid, attnum) from pg_attribute "
        "where attrelid = %s::regclass and attnum > 0 and not attisdropped",
        [source],
    ):
        conn.execute(f'comment on column {target}."{column}" is {_quoted(text)}')
