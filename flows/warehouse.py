"""The warehouse: DuckDB (embedded default) or PostgreSQL, behind one small interface.

Bulk loads only: DuckDB reads frames natively, PostgreSQL through COPY.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.engine import make_url

from flows import raw_schema


class WarehouseError(RuntimeError):
    """The warehouse cannot be reached or used."""


class Connection:
    """One open connection; SQL uses %s placeholders on both engines."""

    def __init__(self, warehouse: Warehouse, raw: Any):
        self.warehouse = warehouse
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self.warehouse._execute(self.raw, sql, params)

    def fetchall(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        return self.warehouse._fetchall(self.raw, sql, params)

    def fetch_df(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        return self.warehouse._fetch_df(self.raw, sql, params)

    def load_frame(self, table: str, frame: pd.DataFrame, columns: Sequence[str]) -> None:
        if not frame.empty:
            self.warehouse._load_frame(self.raw, table, frame[list(columns)], columns)

    def copy_file(self, table: str, columns: Sequence[str], path: Path) -> None:
        """Append a CSV file's lines (UTF-8, no header) to `table` with COPY (PostgreSQL;
        DuckDB reads files in SQL)."""
        self.warehouse._copy_file(self.raw, table, columns, path)


class Warehouse:
    kind: str
    dbt_target: str

    @staticmethod
    def from_url(url: str) -> Warehouse:
        if url.startswith("duckdb:"):
            return DuckDBWarehouse(url)
        if url.startswith(("postgresql:", "postgresql+psycopg:", "postgres:")):
            return PostgresWarehouse(url)
        raise WarehouseError(
            f"unsupported warehouse URL {url!r}: use duckdb:///path/file.duckdb "
            "or postgresql://user:pass@host:port/db"
        )

    # -- interface every engine implements
    @contextmanager
    def connect(self) -> Iterator[Connection]:
        raise NotImplementedError

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        raise NotImplementedError

    def dbt_env(self) -> dict[str, str]:
        raise NotImplementedError

    def display(self) -> str:
        raise NotImplementedError

    # -- shared operations
    def prepare(self) -> None:
        """Create the raw layer and the schema BI reads, if they are not there yet."""
        with self.transaction() as conn:
            for statement in raw_schema.create_statements():
                conn.execute(statement)
            conn.execute("create schema if not exists marts")
            # a warehouse made by an earlier version gets the columns added since
            raw = raw_schema.RAW_SCHEMA
            for table, columns in raw_schema.TABLES.items():
                present = set(self.columns_of(conn, raw, table))
                for column, kind in columns.items():
                    if column not in present and "not null" not in kind:
                        conn.execute(f"alter table {raw}.{table} add column {column} {kind}")

    def index_raw(self) -> None:
        """Index the raw layer where the engine needs it (PostgreSQL)."""

    def ping(self) -> None:
        """Fail fast, with the reason, when the warehouse cannot be reached."""
        with self.connect() as conn:
            conn.fetchall("select 1")

    def table_exists(self, schema: str, table: str) -> bool:
        with self.connect() as conn:
            rows = conn.fetchall(
                "select count(*) from information_schema.tables "
                "where table_schema = %s and table_name = %s",
                [schema, table],
            )
        return rows[0][0] > 0

    def columns_of(self, conn: Connection, schema: str, table: str) -> list[str]:
        rows = conn.fetchall(
            "select column_name from information_schema.columns "
            "where table_schema = %s and table_name = %s order by ordinal_position",
            [schema, table],
        )
        return [r[0] for r in rows]

    def query_df(self, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        with self.connect() as conn:
            return conn.fetch_df(sql, params)


class DuckDBWarehouse(Warehouse):
    kind = "duckdb"
    dbt_target = "duckdb"

    def __init__(self, url: str):
        # SQLAlchemy's convention: duckdb:///relative.duckdb, duckdb:////absolute.duckdb
        database = make_url(url).database
        if not database:
            raise WarehouseError(f"DuckDB URL {url!r} names no file")
        self.path = Path(database).expanduser().resolve()
        self.memory_limit = _setting("duckdb_memory_limit")  # read once, not per connection

    def display(self) -> str:
        return f"duckdb:///{self.path}"

    def _open(self):
        import duckdb

        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            raw = duckdb.connect(str(self.path))
        except duckdb.Error as exc:
            raise WarehouseError(f"cannot open DuckDB warehouse {self.path}: {exc}") from exc
        raw.execute("set enable_progress_bar = false")  # a session option: logs stay clean
        raw.execute(f"set memory_limit = '{self.memory_limit}'")
        return raw

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        # Connections are short-lived so that dbt can open the same file in between.
        raw = self._open()
        try:
            yield Connection(self, raw)
        finally:
            raw.close()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        raw = self._open()
        try:
            raw.begin()
            yield Connection(self, raw)
            raw.commit()
        except BaseException:
            raw.rollback()
            raise
        finally:
            raw.close()

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("%s", "?")

    def _execute(self, raw, sql, params):
        raw.execute(self._sql(sql), params or [])

    def _fetchall(self, raw, sql, params):
        return raw.execute(self._sql(sql), params or []).fetchall()

    def _fetch_df(self, raw, sql, params):
        return raw.execute(self._sql(sql), params or []).df()

    def _load_frame(self, raw, table, frame, columns):
        names = ", ".join(columns)
        raw.register("_cchc_frame", frame)
        try:
            raw.execute(f"insert into {table} ({names}) select {names} from _cchc_frame")
        finally:
            raw.unregister("_cchc_frame")

    def dbt_env(self) -> dict[str, str]:
        return {
            "CCHC_DUCKDB_PATH": str(self.path),
            "CCHC_DUCKDB_MEMORY_LIMIT": self.memory_limit,
        }


def _setting(name: str) -> str:
    from flows.settings import settings

    return getattr(settings(), name)


class PostgresWarehouse(Warehouse):
    kind = "postgres"
    dbt_target = "postgres"

    def __init__(self, url: str):
        self.url = make_url(url)
        if not self.url.database:
            raise WarehouseError("PostgreSQL URL names no database")
        self.conninfo = self.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def display(self) -> str:
        return self.url.set(drivername="postgresql").render_as_string(hide_password=True)

    def _open(self):
        import psycopg

        try:
            return psycopg.connect(self.conninfo, connect_timeout=10)
        except psycopg.Error as exc:
            first_line = (
                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            )
            raise WarehouseError(
                f"cannot connect to PostgreSQL warehouse {self.display()}: {first_line}"
            ) from exc

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        raw = self._open()
        raw.autocommit = True
        try:
            yield Connection(self, raw)
        finally:
            raw.close()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        raw = self._open()
        try:
            with raw.transaction():
                yield Connection(self, raw)
        finally:
            raw.close()

    def _execute(self, raw, sql, params):
        raw.execute(sql, params)

    def _fetchall(self, raw, sql, params):
        return raw.execute(sql, params).fetchall()

    def _fetch_df(self, raw, sql, params):
        cur = raw.execute(sql, params)
        names = [d.name for d in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=names)

    def _load_frame(self, raw, table, frame, columns):
        # DuckDB writes the frame as CSV (vectorised, multi-threaded), COPY reads it.
        import duckdb

        names = ", ".join(columns)
        with tempfile.TemporaryDirectory(prefix="cchc-copy-") as work:
            path = Path(work) / "frame.csv"
            with duckdb.connect() as local:
                local.register("frame", frame)
                local.execute(
                    f"copy (select {names} from frame) to '{path}' "
                    "(format csv, header false, timestampformat '%Y-%m-%d %H:%M:%S.%f')"
                )
            self._copy_file(raw, table, columns, path)

    def _copy_file(self, raw, table, columns, path):
        command = f"copy {table} ({', '.join(columns)}) from stdin (format csv)"
        with raw.cursor().copy(command) as copy, open(path, "rb") as stream:
            while block := stream.read(1 << 20):
                copy.write(block)

    def index_raw(self) -> None:
        with self.connect() as conn:
            present = {name for (name,) in conn.fetchall(
                "select indexname from pg_indexes where schemaname = %s", [raw_schema.RAW_SCHEMA]
            )}  # fmt: skip
            wanted = {n: t for n, t in raw_schema.POSTGRES_INDEXES.items() if n not in present}
            if wanted and (memory := _setting("pg_maintenance_work_mem")):
                conn.execute(f"set maintenance_work_mem = '{memory}'")
            for name, (table, columns) in wanted.items():
                where = f"{raw_schema.RAW_SCHEMA}.{table}"
                if conn.fetchall(f"select exists (select 1 from {where})")[0][0]:
                    conn.execute(f"create index if not exists {name} on {where} ({columns})")
            self._state_loads_per_row(conn)
            # the night's files are newer than anything ANALYZE saw: without this the
            # touched list's `loaded_at > <last build>` was planned as a third of all files,
            # joined by scanning the whole log (6.7 s at 10,000,000 dossiers)
            conn.execute(f"analyze {raw_schema.RAW_SCHEMA}.loaded_files")

    def _state_loads_per_row(self, conn: Connection) -> None:
        """Tell the planner how many loads the change log holds: one per file, some
        sixty rows each at 10,000,000 dossiers, where ANALYZE's sample guessed thousands.
        Planned on that guess, the night's look-ups of its 3,200 files by load (the touched
        dossiers, the audit's count of each new file, the report's rows of the day) read
        the whole log, 5 to 7 s each. Restated when it is off by half or more."""
        table = f"{raw_schema.RAW_SCHEMA}.dossier_log"
        rows, files = conn.fetchall(
            "select coalesce(sum(rows_loaded), 0), count(*) filter (where rows_loaded > 0) "
            f"from {raw_schema.RAW_SCHEMA}.loaded_files"
        )[0]
        if not rows:
            return
        wanted = -min(1.0, files / rows)
        options = conn.fetchall(
            "select attoptions from pg_attribute where attrelid = to_regclass(%s) "
            "and attname = 'load_id'",
            [table],
        )
        stated = dict(o.split("=", 1) for o in (options[0][0] or [])) if options else {}
        current = float(stated.get("n_distinct", 0))
        if current and 0.5 <= wanted / current <= 2:
            return
        conn.execute(f"alter table {table} alter column load_id set (n_distinct = {wanted:.6f})")
        conn.execute(f"analyze {table} (load_id)")

    def dbt_env(self) -> dict[str, str]:
        # Hash joins, not merge joins: with no index, a merge join on the change log's
        # three text keys sorts the whole log (measured at 500,000 dossiers: a night's
        # build 67.5 s with merge joins, 45.9 s without; a full build 66.3 s, 59.3 s).
        # No JIT: it compiled a night's classification query for 0.8 s, which then ran 1 s.
        # random_page_cost 1.1 (SSD, a warehouse in cache), before the deployment's own
        # options so that the deployment's value wins: a night's index lookups of a few
        # dossiers are then preferred to reading whole tables (2,000,000 dossiers: 12.4 s
        # a night, 14.9 s at the default 4).
        options = ["-c random_page_cost=1.1", os.environ.get("PGOPTIONS"),
                   "-c enable_mergejoin=off", "-c jit=off"]  # fmt: skip
        for option in ("work_mem", "maintenance_work_mem"):
            if value := _setting(f"pg_{option}"):
                options.append(f"-c {option}={value}")
        return {
            "CCHC_PG_HOST": self.url.host or "127.0.0.1",
            "CCHC_PG_PORT": str(self.url.port or 5432),
            "CCHC_PG_USER": self.url.username or "postgres",
            "CCHC_PG_DBNAME": self.url.database,
            "DBT_ENV_SECRET_CCHC_PG_PASSWORD": self.url.password or "",
            # libpq's session options, after any the deployment set
            "PGOPTIONS": " ".join(filter(None, options)),
        }
