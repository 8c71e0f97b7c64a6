"""Recompute the cost of stored usage records from their tokens at the current prices.

For every record in range, ``reprice`` prices the stored tokens with the given book (the
bundled table plus the database overrides), looked up by provider and model as the gateway
does: records without a price get one when their model has a price now, priced records
change when their price changed. A record whose model has no price now is left as it is —
an unpriced record stays NULL (never $0), a priced one keeps the cost it was stored with.
The tokens are the record's columns; 1-hour cache writes and the service tier (flex,
priority) come from ``extras_json`` where the record has them, and so does the media usage of
image, transcription and speech records (priced by ``addon.pricing.charge.media_cost``).

Work goes in batches of records (keyset by id), one short transaction each: the batch's rows
are locked (PostgreSQL ``FOR UPDATE``; SQLite's write lock), their costs updated, and every
affected ``KeyDailySpend`` row of a key and UTC day, and every hourly rollup of the records
(``addon.store.rollups``), moved by the same delta, in that same transaction — so budget
counters and reports change by exactly what their records' costs change, and two runs at
once cannot both apply a delta. Running it again with the same prices changes nothing.
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Row, Table, bindparam, delete, func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from addon.limits import day_key
from addon.moments import iso_utc
from addon.pricing.cost import format_usd
from addon.pricing.table import PriceBook
from addon.store import rollups
from addon.store.audit_repo import record_event
from addon.store.models import KeyDailySpend, UsageRecord
from addon.store.record_cost import current_cost
from addon.store.report_fields import DIMENSION_NAMES

BATCH_SIZE = 1000
_USAGE: Table = UsageRecord.__table__  # type: ignore[attr-defined]
_SPEND: Table = KeyDailySpend.__table__  # type: ignore[attr-defined]
# what repricing reads of a record: the table's own column objects, looked up at import
# so a renamed or dropped column fails loading this module, not a repricing run
_READ = tuple(
    _USAGE.c[name]
    for name in (
        "id",
        "created_at",
        "virtual_key_id",
        "provider",
        "model",
        "input_tokens",
        "cached_input_tokens",
        "cache_write_tokens",
        "output_tokens",
        "reasoning_tokens",
        "cost_picousd",
        "extras_json",
        "estimated",
        "error_kind",
        *DIMENSION_NAMES,
    )
)


@dataclass
class RepriceSummary:
    """What a run found; ``examined`` = repriced + unchanged + still_unpriced + kept."""

    examined: int = 0
    repriced: int = 0  # cost changed (newly priced ones included)
    newly_priced: int = 0  # was NULL, has a cost now
    unchanged: int = 0
    still_unpriced: int = 0  # NULL, and the model still has no price
    kept_without_price: int = 0  # had a cost, the model has no price now: left as it was
    cost_before_picousd: int = 0  # sum over the examined records with a cost
    cost_after_picousd: int = 0
    spend_days_adjusted: int = 0  # (key, UTC day) budget counters changed

    def counts(self) -> dict[str, int]:
        return asdict(self)


def like_pattern(glob: str) -> str:
    """A SQL LIKE pattern (escape ``\\``) matching at least what the glob matches."""
    out, i = [], 0
    while i < len(glob):
        c = glob[i]
        if c == "*":
            out.append("%")
        elif c == "?":
            out.append("_")
        elif c == "[" and (end := _class_end(glob, i)) > 0:
            out.append("_")  # a character class matches exactly one character
            i = end
        else:
            out.append("\\" + c if c in "%_\\" else c)
        i += 1
    return "".join(out)


def _class_end(glob: str, start: int) -> int:
    """Index of the ``]`` closing the class opened at ``start`` (fnmatch's rules), else -1."""
    j = start + 1
    if j < len(glob) and glob[j] == "!":
        j += 1
    if j < len(glob) and glob[j] == "]":
        j += 1
    return glob.find("]", j)


def describe_range(since: datetime | None, until: datetime | None, model_glob: str | None) -> str:
    """The audit target: which records a run covered."""
    parts = [f"since {_iso(since)}"] if since else []
    parts += [f"until {_iso(until)}"] if until else []
    parts += [f"model {model_glob}"] if model_glob else []
    return ("usage records " + ", ".join(parts) if parts else "usage records (all)")[:300]


def _details(
    summary: RepriceSummary, since: datetime | None, until: datetime | None, glob: str | None
) -> dict[str, Any]:
    """The audit details: the range, the counts and the totals as exact USD strings."""
    details: dict[str, Any] = {"since": since, "until": until, "model": glob}
    details = {k: _iso(v) if isinstance(v, datetime) else v for k, v in details.items() if v}
    details.update(summary.counts())
    details["cost_before_usd"] = format_usd(details.pop("cost_before_picousd"))
    details["cost_after_usd"] = format_usd(details.pop("cost_after_picousd"))
    return details


def _iso(moment: datetime) -> str:
    return iso_utc(moment, timespec="auto")


def reprice(
    *,
    session: Session,
    book: PriceBook,
    actor: str,
    since: datetime | None = None,
    until: datetime | None = None,
    model_glob: str | None = None,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
) -> RepriceSummary:
    """Reprice the records created in [since, until) whose model matches the glob
    (case-insensitive); with ``dry_run`` only count. Audited as ``usage.repriced``."""
    if batch_size < 1:
        raise ValueError("batch size must be at least 1")
    summary = RepriceSummary()
    glob = model_glob.lower() if model_glob else None
    adjusted: set[tuple[str, str]] = set()
    last_id: int | None = 0
    try:
        while last_id is not None:
            if not dry_run:
                _write_lock(session)
            rows = _batch(session, last_id, batch_size, since, until, glob, lock=not dry_run)
            last_id = rows[-1].id if rows else None
            if glob is not None:
                rows = [r for r in rows if r.model and fnmatch.fnmatchcase(r.model.lower(), glob)]
            changes, deltas = _tally(rows, book, summary)
            adjusted.update(k for k, delta in deltas.items() if delta)
            if dry_run:
                session.rollback()
            else:
                _apply(session, changes, deltas)
                _move_rollups(session, rows, changes)
                session.commit()
    except BaseException:
        session.rollback()
        raise
    summary.spend_days_adjusted = len(adjusted)
    if not dry_run:
        target = describe_range(since, until, model_glob)
        details = _details(summary, since, until, model_glob)
        record_event(
            session=session, actor=actor, action="usage.repriced", target=target, details=details
        )
        session.commit()
    return summary


def _apply(
    session: Session, changes: list[dict[str, int]], deltas: dict[tuple[str, str], int]
) -> None:
    """Store the batch's new costs and move each key's daily spend by the same amounts."""
    if changes:
        stmt = (
            update(_USAGE)
            .where(_USAGE.c.id == bindparam("b_id"))
            .values(cost_picousd=bindparam("b_cost"))
        )
        session.execute(stmt, changes)
    for (key_id, day), delta in sorted(deltas.items()):
        if delta:
            _add_spend(session, key_id, day, delta)


def _move_rollups(session: Session, rows: list[Row[Any]], changes: list[dict[str, int]]) -> None:
    """Move the hourly rollups by what the batch's cost changes move its records' sums."""
    costs = {c["b_id"]: c["b_cost"] for c in changes}
    old = [r for r in rows if r.id in costs]
    new = [SimpleNamespace(**{**r._mapping, "cost_picousd": costs[r.id]}) for r in old]
    rollups.replace(session, old, new)


def _batch(
    session: Session,
    after_id: int,
    size: int,
    since: datetime | None,
    until: datetime | None,
    glob: str | None,
    *,
    lock: bool,
) -> list[Row[Any]]:
    """The next ``size`` records in range after ``after_id``, by id (locked when writing).

    A model glob narrows the batch with LIKE; the caller applies the exact glob."""
    stmt = select(*_READ).where(col(UsageRecord.id) > after_id)
    if since is not None:
        stmt = stmt.where(col(UsageRecord.created_at) >= since)
    if until is not None:
        stmt = stmt.where(col(UsageRecord.created_at) < until)
    if glob is not None:
        stmt = stmt.where(func.lower(col(UsageRecord.model)).like(like_pattern(glob), escape="\\"))
    stmt = stmt.order_by(col(UsageRecord.id)).limit(size)
    if lock and session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return list(session.execute(stmt).all())


def _tally(
    rows: list[Row[Any]], book: PriceBook, summary: RepriceSummary
) -> tuple[list[dict[str, int]], dict[tuple[str, str], int]]:
    """Count the batch into ``summary``; the cost updates and the spend delta per key/day."""
    changes: list[dict[str, int]] = []
    deltas: dict[tuple[str, str], int] = defaultdict(int)
    for row in rows:
        old, new = row.cost_picousd, current_cost(row, book)
        summary.examined += 1
        if new is None:
            new = old  # no price now: an unpriced record stays NULL, a priced one keeps its cost
            if old is None:
                summary.still_unpriced += 1
            else:
                summary.kept_without_price += 1
        elif new == old:
            summary.unchanged += 1
        else:
            summary.repriced += 1
            if old is None:
                summary.newly_priced += 1
            changes.append({"b_id": row.id, "b_cost": new})
            if row.virtual_key_id:
                deltas[(row.virtual_key_id, day_key(row.created_at))] += new - (old or 0)
        summary.cost_before_picousd += old or 0
        summary.cost_after_picousd += new or 0
    return changes, deltas


def _write_lock(session: Session) -> None:
    """On SQLite, take the database write lock before reading, so the batch is read under it.

    (pysqlite begins its transaction at the first write; a write that deletes nothing is
    enough.) PostgreSQL locks the batch's rows with ``FOR UPDATE`` instead."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(delete(_SPEND).where(_SPEND.c.day == ""))


def _add_spend(session: Session, key_id: str, day: str, delta: int) -> None:
    """Add ``delta`` to a key's settled spend on a day (an atomic upsert)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(_SPEND).values(virtual_key_id=key_id, day=day, spent_picousd=delta, requests=0)
    stmt = stmt.on_conflict_do_update(
        index_elements=["virtual_key_id", "day"],
        set_={"spent_picousd": _SPEND.c.spent_picousd + stmt.excluded.spent_picousd},
    )
    session.execute(stmt)
