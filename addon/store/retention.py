"""Rebuilding the hourly rollups from the raw records, checking them, and pruning raw records.

``rebuild`` recomputes the rollup of every UTC hour in range that still has raw records, a
few hours per transaction; an hour without raw records (pruned, or never used) keeps its
rollup as it is, so a rebuild never erases what pruning kept. Each transaction locks the
rollups against the writers first (PostgreSQL ``SHARE ROW EXCLUSIVE``, which the writers'
upserts wait for; SQLite's database write lock), so a batch a gateway writes meanwhile is
counted exactly once: either it committed before and the rebuild reads it, or it adds its
sums after the rebuild's commit.

``prune`` deletes the raw records created before a whole UTC hour, in batches, after checking
that the rollups of those hours equal their raw sums (otherwise reports would change).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, CursorResult, delete, func, insert, select, text
from sqlmodel import Session

from addon.moments import iso_or_none
from addon.store import rollups
from addon.store.audit_repo import record_event
from addon.store.report_fields import MEASURE_NAMES, hour_of
from addon.store.rollups import HOURLY, RAW

REBUILD_CHUNK = timedelta(hours=6)  # one transaction: short enough not to stall the writers
PRUNE_BATCH = 10_000


@dataclass(frozen=True)
class RebuildSummary:
    hours: int  # hours recomputed (those with raw records)
    records: int  # raw records summed
    kept_hours: int  # hours in range with rollups but no raw records (pruned): left as they were


def _iso(moment: datetime | None) -> str | None:
    return iso_or_none(moment, timespec="auto")


def _in_range(stmt: Any, since: datetime | None, until: datetime | None) -> Any:
    if since is not None:
        stmt = stmt.where(RAW.c.created_at >= since)
    if until is not None:
        stmt = stmt.where(RAW.c.created_at < until)
    return stmt


def whole_hours(since: datetime | None, until: datetime | None) -> tuple[datetime | None, ...]:
    """[since, until) widened to whole UTC hours (a rollup is all of its hour or nothing)."""
    lo = hour_of(since) if since is not None else None
    hi = None
    if until is not None:
        hi = hour_of(until)
        hi = hi if hi == until else hi + timedelta(hours=1)
    return lo, hi


def _chunks(session: Session, since: datetime | None, until: datetime | None) -> Iterator[Any]:
    """Consecutive [start, end) spans of REBUILD_CHUNK that hold raw records; empty stretches
    are skipped."""
    start: datetime | None = since
    while True:
        first = session.execute(_in_range(select(func.min(RAW.c.created_at)), start, until))
        moment = first.scalar()
        session.rollback()  # end the read: each chunk's transaction starts with its lock
        if moment is None:
            return
        lo = hour_of(moment)
        hi = lo + REBUILD_CHUNK
        if until is not None:
            hi = min(hi, until)
        yield lo, hi
        start = hi


def _lock(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE usage_hourly IN SHARE ROW EXCLUSIVE MODE"))
    else:  # any write takes SQLite's write lock until commit; this one changes nothing
        session.execute(delete(HOURLY).where(HOURLY.c.null_dims < 0))


def _rebuild_span(session: Session, lo: datetime, hi: datetime) -> tuple[int, int]:
    dialect = session.get_bind().dialect.name
    hour = rollups.raw_hour(dialect)
    hours = _in_range(select(hour).distinct(), lo, hi)
    in_span = (HOURLY.c.hour >= lo) & (HOURLY.c.hour < hi)  # the index narrows, IN decides
    session.execute(delete(HOURLY).where(in_span, HOURLY.c.hour.in_(hours.scalar_subquery())))
    keys = rollups.raw_key_columns(dialect)
    sums = [func.sum(m.of_raw(RAW)) for m in rollups.MEASURES]
    grouped = _in_range(select(*keys, *sums), lo, hi).group_by(*keys)
    cols = [*rollups.KEY_COLUMNS, *MEASURE_NAMES]
    session.execute(insert(HOURLY).from_select(cols, grouped))
    counted = _in_range(select(func.count(), func.count(hour.distinct())), lo, hi)
    records, n_hours = session.execute(counted).one()
    return int(n_hours), int(records)


def rebuild(
    *, session: Session, actor: str, since: datetime | None = None, until: datetime | None = None
) -> RebuildSummary:
    """Recompute the rollups of the hours of [since, until) that have raw records (the range
    widened to whole hours). Audited as ``usage.rollups_rebuilt``."""
    lo, hi = whole_hours(since, until)
    n_hours = n_records = 0
    try:
        for start, end in list(_chunks(session, lo, hi)):
            _lock(session)
            h, r = _rebuild_span(session, start, end)
            session.commit()
            n_hours, n_records = n_hours + h, n_records + r
    except BaseException:
        session.rollback()
        raise
    kept = _rollup_hours(session, lo, hi) - n_hours
    details = {"since": _iso(lo), "until": _iso(hi), "hours": n_hours, "records": n_records}
    details["kept_hours"] = kept
    target = f"usage rollups {_iso(lo) or 'start'} .. {_iso(hi) or 'now'}"
    record_event(
        session=session,
        actor=actor,
        action="usage.rollups_rebuilt",
        target=target,
        details={k: v for k, v in details.items() if v is not None},
    )
    session.commit()
    return RebuildSummary(hours=n_hours, records=n_records, kept_hours=kept)


def _rollup_hours(session: Session, lo: datetime | None, hi: datetime | None) -> int:
    stmt = select(func.count(HOURLY.c.hour.distinct()))
    if lo is not None:
        stmt = stmt.where(HOURLY.c.hour >= lo)
    if hi is not None:
        stmt = stmt.where(HOURLY.c.hour < hi)
    return int(session.execute(stmt).scalar() or 0)


def mismatched_hours(
    session: Session, since: datetime | None = None, until: datetime | None = None
) -> list[datetime]:
    """The hours of [since, until) with raw records whose rollups differ from their raw sums."""
    dialect = session.get_bind().dialect.name
    lo, hi = whole_hours(since, until)
    hour = rollups.raw_hour(dialect).label("hour")
    raw_cols: list[ColumnElement[Any]] = [func.sum(m.of_raw(RAW)) for m in rollups.MEASURES]
    raw_q = _in_range(select(hour, *raw_cols), lo, hi).group_by(hour)
    raw = {_hour_key(r[0]): tuple(int(v) for v in r[1:]) for r in session.execute(raw_q)}
    if not raw:
        return []
    roll_cols = [func.sum(HOURLY.c[m]) for m in MEASURE_NAMES]
    roll_q = select(HOURLY.c.hour, *roll_cols).group_by(HOURLY.c.hour)
    if lo is not None:
        roll_q = roll_q.where(HOURLY.c.hour >= lo)
    if hi is not None:
        roll_q = roll_q.where(HOURLY.c.hour < hi)
    rolled = {_hour_key(r[0]): tuple(int(v) for v in r[1:]) for r in session.execute(roll_q)}
    return sorted(h for h, sums in raw.items() if rolled.get(h) != sums)


def _hour_key(value: Any) -> datetime:
    """An hour as a UTC datetime (SQLite's raw expression yields the stored text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return hour_of(value)


def prune_count(session: Session, before: datetime) -> int:
    """How many raw records ``prune`` would delete."""
    cutoff = hour_of(before)
    return int(session.execute(_in_range(select(func.count()), None, cutoff)).scalar() or 0)


class RollupsStale(Exception):
    """The rollups of some hours to prune differ from their raw records."""

    def __init__(self, hours: list[datetime]) -> None:
        first = _iso(hours[0])
        super().__init__(
            f"the rollups of {len(hours)} hour(s) (the first {first}) differ from their raw"
            " records; run 'tollkeeper usage rebuild' first"
        )
        self.hours = hours


def prune(*, session: Session, actor: str, before: datetime) -> int:
    """Delete the raw records created before the UTC hour ``before`` falls in; their hours
    keep their rollups. Audited as ``usage.pruned``. Returns how many were deleted."""
    cutoff = hour_of(before)
    if session.get_bind().dialect.name == "postgresql":  # the check reads every old record
        session.execute(text("SET LOCAL statement_timeout = 0"))
    stale = mismatched_hours(session, None, cutoff)
    session.rollback()
    if stale:
        raise RollupsStale(stale)
    ids = _in_range(select(RAW.c.id), None, cutoff).limit(PRUNE_BATCH).scalar_subquery()
    deleted = 0
    while True:
        result: CursorResult[Any] = session.execute(delete(RAW).where(RAW.c.id.in_(ids)))  # type: ignore[assignment]
        n = result.rowcount
        session.commit()
        deleted += n
        if n < PRUNE_BATCH:
            break
    record_event(
        session=session,
        actor=actor,
        action="usage.pruned",
        target=f"usage records before {_iso(cutoff)}",
        details={"before": _iso(cutoff), "deleted": deleted},
    )
    session.commit()
    return deleted
