"""Hourly usage rollups: what ``tollkeeper usage`` reads instead of millions of raw records.

``usage_hourly`` holds one row per UTC hour and combination of ``DIMENSIONS`` with the sums
of ``MEASURES``. ``add`` folds a batch of records into it inside the transaction that inserts
the records, with an upsert that adds (``INSERT ... ON CONFLICT DO UPDATE SET x = x +
excluded.x``): gateway processes sharing one PostgreSQL never lose an increment, and rows are
upserted in key order so two batches cannot deadlock.

Dimension columns are NOT NULL (a unique key treats NULLs as distinct, which would defeat the
upsert): a NULL is stored as ``''`` with its bit set in ``null_dims`` (bit i = DIMENSIONS[i]),
so a real empty string and a missing value stay apart. ``dimension`` reads a column back.

Adding a dimension is one entry in ``report_fields.DIMENSIONS`` plus a migration that adds the
column with ``server_default ''``, sets its bit in ``null_dims`` of the existing rows (they were
summed over every value, i.e. "unknown") and recreates the primary key with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Integer,
    String,
    Table,
    case,
    func,
    literal,
    null,
)
from sqlmodel import Session, SQLModel
from sqlmodel.sql.sqltypes import UTCDateTime

from addon.store import driver_sql
from addon.store.models import UsageRecord
from addon.store.report_fields import (
    DIMENSION_NAMES,
    DIMENSIONS,
    MEASURE_NAMES,
    TOKEN_FIELDS,
    hour_of,
)
from addon.store.upserts import upsert_adding

RAW: Table = UsageRecord.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Measure:
    """A summed quantity: its value for one record, in Python and as SQL over the raw table."""

    name: str
    of_record: Callable[[Any], int]
    of_raw: Callable[[Table], ColumnElement[Any]]


def _count_if(test: Callable[[Table], ColumnElement[bool]]) -> Callable[[Table], Any]:
    return lambda t: case((test(t), 1), else_=0)


def _unpriced_tokens(field: str) -> Measure:
    return Measure(
        f"unpriced_{field}",
        lambda r: getattr(r, field) if r.cost_picousd is None else 0,
        lambda t: case((t.c.cost_picousd.is_(None), t.c[field]), else_=0),
    )


def _tokens(field: str) -> Measure:
    return Measure(field, lambda r: getattr(r, field), lambda t: t.c[field])


MEASURES: tuple[Measure, ...] = (
    Measure("requests", lambda r: 1, lambda t: literal(1)),
    *(_tokens(f) for f in TOKEN_FIELDS),
    Measure(
        "cost_picousd",
        lambda r: r.cost_picousd or 0,
        lambda t: func.coalesce(t.c.cost_picousd, 0),
    ),
    Measure(
        "priced_requests",
        lambda r: int(r.cost_picousd is not None),
        _count_if(lambda t: t.c.cost_picousd.is_not(None)),
    ),
    Measure(
        "unpriced_requests",
        lambda r: int(r.cost_picousd is None),
        _count_if(lambda t: t.c.cost_picousd.is_(None)),
    ),
    _unpriced_tokens("input_tokens"),
    _unpriced_tokens("output_tokens"),
    Measure(
        "estimated_requests", lambda r: int(bool(r.estimated)), _count_if(lambda t: t.c.estimated)
    ),
    Measure(
        "error_requests",
        lambda r: int(r.error_kind is not None),
        _count_if(lambda t: t.c.error_kind.is_not(None)),
    ),
)
KEY_COLUMNS = ("hour", *DIMENSION_NAMES, "null_dims")

HOURLY = Table(
    "usage_hourly",
    SQLModel.metadata,
    Column("hour", UTCDateTime(), primary_key=True),
    *(Column(n, String(size), primary_key=True, server_default="") for n, size in DIMENSIONS),
    Column("null_dims", Integer, primary_key=True, server_default="0"),
    *(Column(n, BigInteger, nullable=False, server_default="0") for n in MEASURE_NAMES),
)


def dimension(name: str, table: Table = HOURLY) -> ColumnElement[Any]:
    """A dimension of the rollups as the records have it (NULL where the record had NULL)."""
    bit = 1 << DIMENSION_NAMES.index(name)
    return case((table.c.null_dims.op("&")(bit) != 0, null()), else_=table.c[name])


# --- writing ------------------------------------------------------------------------------


def _key(record: Any) -> tuple[Any, ...]:
    values = [getattr(record, n) for n in DIMENSION_NAMES]
    mask = 0
    for i, v in enumerate(values):
        if v is None:
            mask |= 1 << i
            values[i] = ""
    return (hour_of(record.created_at), *values, mask)


def _values(r: Any) -> tuple[int, ...]:
    """``MEASURES`` of one record, in one call: the writer's hot path (the GIL is shared with
    the proxy). Equal to ``of_record`` of each measure, which the tests check against SQL."""
    cost, inp, out = r.cost_picousd, r.input_tokens, r.output_tokens
    if cost is None:
        priced = (1, inp, r.cached_input_tokens, r.cache_write_tokens, out, r.reasoning_tokens)
        tail: tuple[int, ...] = (0, 0, 1, inp, out)
    else:
        priced = (1, inp, r.cached_input_tokens, r.cache_write_tokens, out, r.reasoning_tokens)
        tail = (cost, 1, 0, 0, 0)
    return (*priced, *tail, 1 if r.estimated else 0, 0 if r.error_kind is None else 1)


def add(session: Session, records: Iterable[Any]) -> None:
    """Add the records' measures to their hours, in the session's transaction."""
    replace(session, (), records)


def replace(session: Session, old: Iterable[Any], new: Iterable[Any]) -> None:
    """Take the ``old`` versions of records out of their hours and add the ``new`` ones
    (``usage reprice`` changing costs), in one upsert."""
    sums: dict[tuple[Any, ...], list[int]] = {}
    for sign, records in ((-1, old), (1, new)):
        for record in records:
            key, values = _key(record), _values(record)
            acc = sums.get(key)
            if acc is None:
                sums[key] = [sign * v for v in values]
            else:
                for i, v in enumerate(values):
                    acc[i] += sign * v
    upsert(session, [(key, dict(zip(MEASURE_NAMES, v, strict=True))) for key, v in sums.items()])


def upsert(session: Session, rows: Sequence[tuple[tuple[Any, ...], dict[str, int]]]) -> None:
    """Add each ``(key, {measure: amount})`` to its rollup row (created when missing).

    Rows go in key order: two transactions touching the same rows lock them in one order."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    stmt = upsert_adding(dialect, HOURLY, KEY_COLUMNS, MEASURE_NAMES)
    params = [
        {**dict(zip(KEY_COLUMNS, key, strict=True)), **amounts}
        for key, amounts in sorted(rows, key=lambda r: r[0])
    ]
    driver_sql.run_many(session, stmt, params)


# --- from the raw records -----------------------------------------------------------------


def raw_hour(dialect: str) -> ColumnElement[Any]:
    """The start of a raw record's UTC hour, in the form the ``hour`` column stores."""
    created = RAW.c.created_at
    if dialect == "postgresql":
        return func.timezone("UTC", func.date_trunc("hour", func.timezone("UTC", created)))
    # SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC)
    return func.strftime("%Y-%m-%d %H:00:00.000000", created)


def raw_key_columns(dialect: str) -> list[ColumnElement[Any]]:
    """The rollup key of each raw record, in ``KEY_COLUMNS`` order."""
    dims = [func.coalesce(RAW.c[n], "") for n in DIMENSION_NAMES]
    bits = [case((RAW.c[n].is_(None), 1 << i), else_=0) for i, n in enumerate(DIMENSION_NAMES)]
    mask: ColumnElement[Any] = bits[0]
    for bit in bits[1:]:
        mask = mask + bit
    return [raw_hour(dialect), *dims, mask]


def raw_measures() -> list[ColumnElement[Any]]:
    """Each measure of one raw record, labelled with its name."""
    return [m.of_raw(RAW).label(m.name) for m in MEASURES]
