"""Engines and migrations for the catalog database.

`CODEXFIELD_INDEX_DB` (or `--db`) names the database: a SQLAlchemy URL
(`postgresql+psycopg://user:pw@host/db`, `sqlite:////abs/path.db`) or a plain file path
(SQLite). The default is `~/.codexfield/index.db`. The schema is managed by Alembic; the
migration scripts live in `codexfield/indexer/migrations` (`codexfield index migrate`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, Engine, Table, create_engine, event, or_, text

from codexfield.sqlite import wal

ENV_DB = "CODEXFIELD_INDEX_DB"
DEFAULT_DB = Path("~/.codexfield/index.db")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def database_url(spec: str | os.PathLike[str] | None = None) -> str:
    """A SQLAlchemy URL from a URL, a file path, `$CODEXFIELD_INDEX_DB` or the default file."""
    text = str(spec) if spec is not None else os.environ.get(ENV_DB, "")
    if not text:
        text = str(DEFAULT_DB.expanduser())
    if "://" in text:
        if text.startswith("postgresql://") or text.startswith("postgres://"):
            text = "postgresql+psycopg://" + text.split("://", 1)[1]
        return text
    path = Path(text).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def make_engine(spec: str | os.PathLike[str] | None = None, **kw) -> Engine:
    url = database_url(spec)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kw)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # WAL: readers (the API) never block the indexer
            wal(dbapi_conn, synchronous="NORMAL")
            dbapi_conn.execute("PRAGMA foreign_keys=ON")

        return engine
    if url.startswith("postgresql+psycopg"):
        # psycopg 3 prepares a statement server-side after 5 runs; PostgreSQL then may switch to a
        # generic plan, which for full-text and filtered searches is a sequential scan (seconds
        # instead of milliseconds at 100k capsules). Plan every search with its real parameters.
        kw["connect_args"] = {"prepare_threshold": None, **kw.get("connect_args", {})}
    return create_engine(url, pool_pre_ping=True, **kw)


def alembic_config(engine_or_url):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    url = engine_or_url if isinstance(engine_or_url, str) else engine_or_url.url.render_as_string(hide_password=False)
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


MIGRATE_LOCK = 0x436F646579  # pg_advisory_xact_lock key of `migrate`


def _transactional_sqlite(engine: Engine) -> Engine:
    """An engine on the same SQLite file whose transactions really enclose DDL.

    pysqlite opens a transaction only before INSERT/UPDATE/DELETE, so `CREATE TABLE` runs in
    autocommit: a process killed during the first migration left some tables and no
    `alembic_version`, a catalog no later migration could open ("table ... already exists").
    Here the driver's own transaction handling is off and every transaction is an explicit
    `BEGIN IMMEDIATE` (also serialising two processes migrating one file at once)."""
    mig = create_engine(engine.url, connect_args={"timeout": 30})

    @event.listens_for(mig, "connect")
    def _autocommit_driver(dbapi_conn, _record):
        dbapi_conn.isolation_level = None

    @event.listens_for(mig, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return mig


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (Alembic upgrade) on `engine`, in one transaction: a crash
    mid-migration leaves the schema as it was (SQLite and PostgreSQL both have transactional
    DDL). Concurrent migrations of one database run one after the other."""
    from alembic import command

    cfg = alembic_config(engine)
    target = _transactional_sqlite(engine) if engine.dialect.name == "sqlite" else engine
    try:
        with target.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATE_LOCK})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        if target is not engine:
            target.dispose()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


# --- bulk writes ----------------------------------------------------------------------------

BULK_ROWS = 20_000  # rows per statement of `bulk_insert` on PostgreSQL


def bulk_insert(
    conn: Connection,
    table: Table,
    rows: Iterable[Mapping[str, Any]],
    *,
    on_conflict: Literal["update", "nothing"] | None = None,
    only_changed: bool = False,
) -> None:
    """INSERT many rows of `table` (every row with the same columns) in few statements.

    `on_conflict="update"`: a row whose primary key exists replaces that row's other columns
    (with `only_changed`, only where a value differs: an unchanged row is not rewritten);
    `"nothing"`: keeps the existing row. On PostgreSQL an upsert's rows travel as one array per
    column: `INSERT INTO t (...) SELECT * FROM unnest(%s::type[], ...) ON CONFLICT ...` — a
    short statement, BULK_ROWS rows a round trip, no per-row parsing or execution — and a plain
    insert is a COPY; elsewhere (SQLite, in-process) an executemany of the INSERT or upsert."""
    rows = list(rows)
    if not rows:
        return
    dialect = conn.dialect
    pk = [c.name for c in table.primary_key.columns]
    rest = [c for c in rows[0] if c not in pk]  # what an upsert updates: the columns the rows give
    if dialect.name == "postgresql":
        # As SQLAlchemy's INSERT does: a column a row leaves out takes its Python-side default
        # (when inserted; an upsert does not overwrite it).
        given = set(rows[0])
        defaults = {
            c.name: c.default.arg
            for c in table.columns
            if c.name not in given and c.default is not None and c.default.is_scalar
        }
        if defaults:
            rows = [{**defaults, **r} for r in rows]
    cols = [table.c[c] for c in rows[0]]
    if dialect.name != "postgresql":
        if on_conflict is None:
            conn.execute(table.insert(), rows)
            return
        from sqlalchemy.dialects.sqlite import insert as dialect_insert

        stmt = dialect_insert(table)
        if on_conflict == "update" and rest:
            where = or_(*[table.c[c].is_distinct_from(stmt.excluded[c]) for c in rest]) if only_changed else None
            stmt = stmt.on_conflict_do_update(index_elements=pk, set_={c: stmt.excluded[c] for c in rest}, where=where)
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=pk)
        conn.execute(stmt, rows)
        return
    q = dialect.identifier_preparer
    names = [q.quote(c.name) for c in cols]
    procs = [_array_processor(c, dialect) for c in cols]
    keys = [c.name for c in cols]
    if on_conflict is None:
        # Plain inserts (the journal, block hashes, a bulk load): COPY, whose rows psycopg formats
        # in C and the server takes without planning an INSERT — about half the time of the
        # unnest INSERT for a range's journal entries, measured.
        cur = conn.connection.driver_connection.cursor()
        with cur.copy(f"COPY {q.format_table(table)} ({', '.join(names)}) FROM STDIN") as copy:
            for r in rows:
                copy.write_row([v if (v := r[k]) is None or proc is None else proc(v) for k, proc in zip(keys, procs)])
        return
    # `%b`: the arrays travel in PostgreSQL's binary format (dumped in C; the text format is
    # escaped in Python, several times slower).
    arrays = ", ".join(f"%b::{c.type.compile(dialect=dialect)}[]" for c in cols)
    sql = f"INSERT INTO {q.format_table(table)} ({', '.join(names)}) SELECT * FROM unnest({arrays})"
    target = ", ".join(q.quote(c) for c in pk)
    if on_conflict == "update" and rest:
        sets = ", ".join(f"{q.quote(c)} = EXCLUDED.{q.quote(c)}" for c in rest)
        sql += f" ON CONFLICT ({target}) DO UPDATE SET {sets}"
        if only_changed:
            t = q.format_table(table)
            old = ", ".join(f"{t}.{q.quote(c)}" for c in rest)
            new = ", ".join(f"EXCLUDED.{q.quote(c)}" for c in rest)
            sql += f" WHERE ({old}) IS DISTINCT FROM ({new})"
    else:
        sql += f" ON CONFLICT ({target}) DO NOTHING"
    for i in range(0, len(rows), BULK_ROWS):
        chunk = rows[i : i + BULK_ROWS]
        params = []
        for k, proc in zip(keys, procs):
            values = [r[k] for r in chunk]
            params.append([None if v is None else proc(v) for v in values] if proc is not None else values)
        conn.exec_driver_sql(sql, tuple(params))


def bulk_select(conn: Connection, table: Table, keys: list[tuple]) -> list[dict[str, Any]]:
    """The rows of `table` whose primary key is one of `keys` (tuples in primary-key order), as
    dicts with the columns' Python values; absent keys are simply missing.

    PostgreSQL: one statement per BULK_ROWS keys, the keys as binary arrays joined with
    `unnest` (any key width, one short statement); elsewhere `IN` lists of 500 keys."""
    from sqlalchemy import select, tuple_

    pk = list(table.primary_key.columns)
    dialect = conn.dialect
    out: list[dict[str, Any]] = []
    if dialect.name != "postgresql":
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            cond = pk[0].in_([k[0] for k in chunk]) if len(pk) == 1 else tuple_(*pk).in_(chunk)
            out += [dict(r) for r in conn.execute(select(table).where(cond)).mappings()]
        return out
    q = dialect.identifier_preparer
    t = q.format_table(table)
    cols = list(table.columns)
    arrays = ", ".join(f"%b::{c.type.compile(dialect=dialect)}[]" for c in pk)
    names = ", ".join(f"k{i}" for i in range(len(pk)))
    on = " AND ".join(f"{t}.{q.quote(c.name)} = k.k{i}" for i, c in enumerate(pk))
    sql = (
        f"SELECT {', '.join(f'{t}.{q.quote(c.name)}' for c in cols)} FROM {t} "
        f"JOIN unnest({arrays}) AS k({names}) ON {on}"
    )
    procs = [(c.name, c.type.result_processor(dialect, None)) for c in cols]
    key_procs = [_array_processor(c, dialect) for c in pk]
    for i in range(0, len(keys), BULK_ROWS):
        chunk = keys[i : i + BULK_ROWS]
        params = tuple([k[j] if p is None or k[j] is None else p(k[j]) for k in chunk] for j, p in enumerate(key_procs))
        for r in conn.exec_driver_sql(sql, params):
            out.append({name: (v if proc is None or v is None else proc(v)) for (name, proc), v in zip(procs, r)})
    return out


def _array_processor(col, dialect):
    """How one column's values enter its array: the type's own bind processing (`models.Uint`'s
    zero-padded strings), and one Python type per array (psycopg refuses e.g. floats mixed with
    ints; a BIGINT column may receive a bool)."""
    from sqlalchemy import Boolean, Float, Integer

    proc = col.type.bind_processor(dialect)
    if proc is not None:
        return proc
    impl = getattr(col.type, "impl_instance", col.type)
    for kind, cast in ((Boolean, bool), (Float, float), (Integer, int)):  # BigInteger is an Integer
        if isinstance(impl, kind):
            return cast
    return None
