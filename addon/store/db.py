"""Engine creation and schema migrations (Alembic, for SQLite and PostgreSQL alike).

Every engine has timeouts, so no database call waits forever on a locked or refusing
database: SQLite waits at most ``SQLITE_BUSY_S`` for a lock; PostgreSQL connections give up
connecting after ``PG_CONNECT_TIMEOUT_S`` and the server cancels any statement running longer
than ``PG_STATEMENT_TIMEOUT_MS`` (migrations lift that limit for their own transaction). A
server that is frozen (it accepts and never answers) is beyond what a driver timeout can
see; the writer bounds its calls itself (``addon.deadline``).
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import create_engine

from addon.store.errors import StoreUnavailable
from addon.store.head import MIGRATIONS_DIR, file_head
from addon.store.timeouts import PG_CONNECT_TIMEOUT_S, PG_STATEMENT_TIMEOUT_MS, SQLITE_BUSY_S

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "MIGRATIONS_DIR",
    "PG_CONNECT_TIMEOUT_S",
    "PG_STATEMENT_TIMEOUT_MS",
    "SQLITE_BUSY_S",
    "StoreUnavailable",
    "describe_error",
    "file_head",
    "make_engine",
    "migrate",
    "open_store",
]


def _sqlite_path(url: str | URL) -> Path | None:
    """The database file of a SQLite URL (None for other databases and in-memory ones)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database
    return Path(database) if database and database != ":memory:" else None


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_S}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_S * 1000}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    engine = create_engine(url, pool_pre_ping=True, **kwargs)
    if engine.dialect.name == "postgresql":
        event.listen(engine, "do_connect", _pg_timeouts)
    return engine


def _pg_timeouts(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
    """Add connect and statement timeouts to what the URL asked for (its own win)."""
    cparams.setdefault("connect_timeout", PG_CONNECT_TIMEOUT_S)
    options = str(cparams.get("options", ""))
    if "statement_timeout" not in options:
        cparams["options"] = f"{options} -c statement_timeout={PG_STATEMENT_TIMEOUT_MS}".strip()


def _alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Serialise migrations between processes that start at the same time."""
    path = _sqlite_path(engine.url)
    if engine.dialect.name == "sqlite":
        if path is None:
            yield
            return
        fd = os.open(f"{path}.migrate.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        return
    with engine.connect() as conn:
        conn.execute(text("SET statement_timeout = 0"))  # another process may be migrating
        conn.execute(text("SELECT pg_advisory_lock(764219)"))
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(764219)"))
            conn.execute(text("RESET statement_timeout"))
            conn.commit()


def _at_head(engine: Engine, head: str | None) -> bool:
    """Whether the database's schema is at ``head``; False when it cannot say (no version
    table yet). A database that cannot be reached raises."""
    with engine.connect() as conn:
        try:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        except SQLAlchemyError:
            return False
    return head is not None and [r[0] for r in rows] == [head]


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; cheap when it is already there."""
    try:
        if _at_head(engine, file_head()):
            return
        _upgrade(engine)
    except SQLAlchemyError as e:
        raise StoreUnavailable(f"database unavailable: {describe_error(e)}") from e


def _upgrade(engine: Engine) -> None:
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    logging.getLogger("alembic").setLevel(logging.WARNING)
    cfg = _alembic_config()
    head = ScriptDirectory.from_config(cfg).get_current_head()
    with engine.connect() as conn:
        if MigrationContext.configure(conn).get_current_revision() == head:
            return
    with _migration_lock(engine), engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL statement_timeout = 0"))  # big tables take long
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def open_store(url: str) -> Engine:
    """An engine on a migrated database, or StoreUnavailable."""
    try:
        engine = make_engine(url)
    except (SQLAlchemyError, ValueError, ImportError) as e:
        raise StoreUnavailable(f"bad database URL: {describe_error(e)}") from e
    migrate(engine)
    return engine


def describe_error(e: BaseException) -> str:
    """The first line of a database error's own message, for one-line reports."""
    orig = getattr(e, "orig", None)
    msg = str(orig if orig is not None else e).strip().splitlines()
    return msg[0] if msg else type(e).__name__
