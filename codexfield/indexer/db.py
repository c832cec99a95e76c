"""Engines and migrations for the catalog database.

`CODEXFIELD_INDEX_DB` (or `--db`) names the database: a SQLAlchemy URL
(`postgresql+psycopg://user:pw@host/db`, `sqlite:////abs/path.db`) or a plain file path
(SQLite). The default is `~/.codexfield/index.db`. The schema is managed by Alembic; the
migration scripts live in `codexfield/indexer/migrations` (`codexfield index migrate`).
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text

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
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

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
