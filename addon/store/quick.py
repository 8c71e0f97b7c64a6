"""Quick reads with the DB-API driver alone: the virtual keys for ``tollkeeper keys list``
(and, through ``fetch``, the usage report of ``addon.store.quick_report``).

Importing SQLAlchemy and SQLModel takes longer than the whole listing, so this reads the
``virtual_keys`` columns the listing shows with ``sqlite3`` (``sqlite:///FILE`` URLs) or
psycopg 3 (``postgresql+psycopg://`` URLs), after checking that ``alembic_version`` is the
migration files' head. Values come back as the ``VirtualKey`` table gives them: times
UTC-aware (SQLite keeps them as naive ISO text, read as SQLAlchemy does), flags as bools.

Whenever it cannot be sure (another URL form, a missing file or driver, no version table,
a schema not at head, a value it cannot read, any database error) ``fetch`` and
``list_keys`` return None and the caller takes the full path (``db.open_store``), which
migrates and reports errors as it always has.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from addon.moments import utcnow
from addon.store.head import file_head
from addon.store.timeouts import PG_CONNECT_TIMEOUT_S, PG_STATEMENT_TIMEOUT_MS, SQLITE_BUSY_S

_SQLITE_FILE = re.compile(r"^sqlite(?:\+pysqlite)?:///([^?#%]+)$")
_PSYCOPG = "postgresql+psycopg://"


@dataclass(frozen=True)
class KeyRecord:
    """One ``virtual_keys`` row without its secret's hash (a ``key_policy.KeyRow``)."""

    id: str
    project: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None
    revoke_reason: str | None
    allowed_providers: str
    allowed_models: str
    budget_picousd: int | None
    budget_period: str
    rpm: int | None
    tpm: int | None
    max_parallel: int | None
    allow_unmetered: bool
    alert_at: str
    metadata_json: str


COLUMNS = tuple(f.name for f in fields(KeyRecord))
_TIMES = ("created_at", "expires_at", "revoked_at")
_QUERY = f"SELECT {', '.join(COLUMNS)} FROM virtual_keys ORDER BY created_at"  # noqa: S608


def list_keys(url: str, *, include_inactive: bool = False) -> list[KeyRecord] | None:
    """What ``keys_repo.list_keys`` returns, or None when only the full path can tell."""
    rows = fetch(url, lambda dialect: (_QUERY, ()))
    if rows is None:
        return None
    try:
        records = [_record(row) for row in rows]
    except (ValueError, TypeError):
        return None
    if include_inactive:
        return records
    from addon.store.key_policy import is_active  # only here: it loads the alert rules

    now = utcnow()
    return [r for r in records if is_active(r, now)]


Query = Callable[[str], tuple[str, Sequence[Any]]]


def fetch(url: str, query: Query) -> Sequence[Sequence[Any]] | None:
    """The rows of ``query(dialect)`` (its SQL and parameters in the driver's style: ``?``
    for ``"sqlite"``, ``%s`` for ``"postgresql"``) on a schema at the migration files' head,
    or None when unsure (see above)."""
    head = file_head()
    if head is None:
        return None
    try:
        match = _SQLITE_FILE.match(url)
        if match and match[1] != ":memory:":
            return _read_sqlite(match[1], head, *query("sqlite"))
        if url.startswith(_PSYCOPG):
            return _read_postgres("postgresql://" + url[len(_PSYCOPG) :], head, query)
    except (sqlite3.Error, OSError, ValueError, TypeError):
        return None
    return None


def _read_sqlite(
    path: str, head: str, sql: str, params: Sequence[Any]
) -> Sequence[Sequence[Any]] | None:
    # mode=rw: a missing file is not created here (the full path creates and migrates it)
    conn = sqlite3.connect(f"file:{quote(path)}?mode=rw", uri=True, timeout=SQLITE_BUSY_S)
    try:
        if conn.execute("SELECT version_num FROM alembic_version").fetchall() != [(head,)]:
            return None
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _read_postgres(uri: str, head: str, query: Query) -> Sequence[Sequence[Any]] | None:
    try:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict, make_conninfo
    except ImportError:
        return None
    try:
        params = conninfo_to_dict(uri)
        params.setdefault("connect_timeout", PG_CONNECT_TIMEOUT_S)  # as db.make_engine does
        options = str(params.get("options", ""))
        if "statement_timeout" not in options:
            params["options"] = f"{options} -c statement_timeout={PG_STATEMENT_TIMEOUT_MS}".strip()
        with psycopg.connect(make_conninfo("", **params)) as conn:
            versions = conn.execute("SELECT version_num FROM alembic_version").fetchall()
            if versions != [(head,)]:
                return None
            sql, values = query("postgresql")
            return conn.execute(sql, values).fetchall()  # type: ignore[arg-type]  # built here
    except psycopg.Error:
        return None


def _record(row: Sequence[Any]) -> KeyRecord:
    values = dict(zip(COLUMNS, row, strict=True))
    for name in _TIMES:
        values[name] = _utc(values[name])
    values["allow_unmetered"] = bool(values["allow_unmetered"])
    return KeyRecord(**values)


def _utc(value: datetime | str | None) -> datetime | None:
    """A stored time as ``sqlmodel``'s ``UTCDateTime`` returns it: SQLite's text is parsed
    with ``fromisoformat`` (SQLAlchemy's SQLite ``DATETIME``); naive means UTC."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(moment, datetime):
        raise TypeError(f"not a time: {value!r}")
    if moment.utcoffset() is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
