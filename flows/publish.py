"""Publish: copy the freshly built marts into schema `marts` in one transaction.

BI reads `marts` only. Until the transaction commits it sees yesterday's tables, whole;
after it, today's, whole: never a mix, never a half-built table.
"""

from __future__ import annotations

from flows.transform import BUILD_SCHEMA, MARTS
from flows.warehouse import Warehouse


def publish(warehouse: Warehouse, marts: list[str] = MARTS) -> dict[str, int]:
    counts = {}
    with warehouse.transaction() as conn:
        conn.execute("create schema if not exists marts")
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
            conn.execute(f"delete from marts.{mart}")
            conn.execute(f"insert into marts.{mart} select * from {BUILD_SCHEMA}.{mart}")
            counts[mart] = conn.fetchall(f"select count(*) from marts.{mart}")[0][0]
    return counts
