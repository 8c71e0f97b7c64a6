"""The writer's statements as the driver's own SQL, run on the session's connection.

Storing a batch of usage records is a handful of statements: the ids already stored, the
insert, the reservations to drop, three adding upserts. Through SQLAlchemy each execution
compiles or looks up its statement, builds a cache key and processes every parameter in
Python, in the thread that shares the GIL with the proxy's event loop; that was most of a
batch's cost. Here each statement is compiled once per dialect (``compiled``) and run with
``exec_driver_sql`` in the session's transaction, its times converted as SQLAlchemy's
``UTCDateTime`` would (``bind``): to UTC, and on SQLite to the text SQLAlchemy stores
(``YYYY-MM-DD HH:MM:SS.ffffff``); the drivers take every other value as it is.
Errors are SQLAlchemy's (``IntegrityError``, ``OperationalError``…), as before.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import ClauseElement
from sqlmodel import Session

SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's SQLite DATETIME storage format


@dataclass(frozen=True)
class Compiled:
    sql: str
    order: tuple[str, ...] | None  # positional parameters (SQLite's "?"): their names in order
    times: tuple[str, ...]  # the parameters that are times (see ``bind``)


_COMPILED: dict[tuple[Any, ...], Compiled] = {}


def compiled(dialect: Dialect, stmt: ClauseElement, columns: tuple[str, ...]) -> Compiled:
    """``stmt`` (an INSERT, maybe with ON CONFLICT) as ``dialect``'s driver SQL, binding
    ``columns`` by name; compiled once per kind of dialect (its engines compile it alike)."""
    key = (type(dialect), dialect.paramstyle, stmt, columns)
    found = _COMPILED.get(key)
    if found is None:
        result: Any = stmt.compile(dialect=dialect, column_keys=list(columns))
        order = tuple(result.positiontup) if result.positional and result.positiontup else None
        table: Table = stmt.table  # type: ignore[attr-defined]  # an INSERT's table
        times = tuple(k for k in columns if _is_time(table, k))
        found = _COMPILED[key] = Compiled(str(result), order, times)
    return found


def _is_time(table: Table, name: str) -> bool:
    kind = table.c[name].type
    return isinstance(getattr(kind, "impl", kind), DateTime)


def bind(dialect: str, value: Any) -> Any:
    """A time parameter as ``UTCDateTime`` binds it: in UTC (as text on SQLite), a time
    without a zone refused (``ValueError``)."""
    if not isinstance(value, datetime):
        return value  # None
    if value.utcoffset() is None:
        raise ValueError("Datetime values must have timezone information.")
    utc = value.astimezone(UTC)
    return utc.strftime(SQLITE_TIME) if dialect == "sqlite" else utc


def run_many(session: Session, stmt: ClauseElement, rows: Sequence[Mapping[str, Any]]) -> None:
    """Execute ``stmt`` once per row (an executemany); every row has the same keys."""
    if not rows:
        return
    conn = session.connection()
    dialect = conn.dialect
    c = compiled(dialect, stmt, tuple(rows[0]))
    name = dialect.name
    if c.times:
        rows = [{**row, **{k: bind(name, row[k]) for k in c.times}} for row in rows]
    params: list[Any] = list(rows)
    if c.order is not None:
        params = [tuple(map(row.__getitem__, c.order)) for row in rows]
    conn.exec_driver_sql(c.sql, params)


def in_list(dialect: str, column: str, values: Iterable[str]) -> tuple[str, Any]:
    """``column IN (values)`` as one parameter, whatever their number, and that parameter:
    a JSON array SQLite expands (``json_each``), an array for PostgreSQL (``= ANY``)."""
    if dialect == "postgresql":
        return f"{column} = ANY(%s)", list(values)
    sql = f"{column} IN (SELECT value FROM json_each(?))"  # noqa: S608 - names are ours
    return sql, json.dumps(list(values))


def matching(session: Session, sql: str, table: Table, column: str, values: Sequence[str]) -> Any:
    """Run ``sql`` (``SELECT ...``/``DELETE ...``, with ``{table}`` and ``{where}``) for the
    rows of ``table`` whose ``column`` is one of ``values``."""
    conn = session.connection()
    where, param = in_list(conn.dialect.name, column, values)
    return conn.exec_driver_sql(sql.format(table=table.name, where=where), (param,))
