"""Engines and migrations for the catalog database.

`CODEXFIELD_INDEX_DB` (or `--db`) names the database: a SQLAlchemy URL
(`postgresql+psycopg://user:pw@host/db`, `sqlite:////abs/path.db`) or a plain file path
(SQLite). The default is `~/.codexfield/index.db`. The schema is managed by Alembic; the
migration scripts live in `codexfield/indexer/migrations` (`codexfield index migrate`).
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, create_engine, event

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


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (Alembic upgrade) on `engine`."""
    from alembic import command

    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
