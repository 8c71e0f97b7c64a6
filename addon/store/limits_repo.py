"""Budgets and rate limits, checked and updated atomically in the database.

``admit`` runs one short transaction per request of a limited key: it takes a per-key
lock (a PostgreSQL advisory lock; SQLite's database write lock), checks max-parallel,
RPM, TPM and budget against what is settled plus what is in flight, and on success
records the request as in flight with a reserved cost and token estimate. ``settle``
runs inside the transaction that stores the usage record: it drops the in-flight row
and adds the real cost and tokens. So for every process sharing the database,
spend = settled + reserved, at every moment, with no read-then-write race.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, delete, func, text
from sqlmodel import Session, col, select

from addon.limits import Limits, day_key, minute_index, period_start_day, seconds_to_next_minute
from addon.store import driver_sql
from addon.store.models import InflightRequest, KeyDailySpend, KeyMinuteUsage, UsageRecord
from addon.store.rows import UsageRow
from addon.store.upserts import upsert_adding

INFLIGHT: Table = InflightRequest.__table__  # type: ignore[attr-defined]


class LimitExceeded(Exception):
    """A request would break a limit. ``kind`` is budget, rpm, tpm or parallel."""

    def __init__(self, kind: str, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.kind, self.message, self.retry_after_s = kind, message, retry_after_s


@dataclass(frozen=True)
class KeyState:
    spent_picousd: int  # settled in the current budget period
    reserved_picousd: int  # in flight
    inflight: int
    minute_requests: int
    minute_tokens: int  # settled plus reserved


def _lock(session: Session, key_id: str) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": key_id})
    else:  # SQLite: any write takes the database's write lock until commit
        session.execute(
            delete(InflightRequest).where(col(InflightRequest.request_id) == "")  # no row
        )


def _upsert_add(
    session: Session, model: Any, rows: list[tuple[dict[str, Any], dict[str, int]]]
) -> None:
    """Add each row's ``adds`` to the row of its ``keys`` (created when missing), in the
    order given; every row (at least one) has the same key and measure names."""
    keys, adds = rows[0]
    dialect = session.get_bind().dialect.name
    stmt = upsert_adding(dialect, model.__table__, tuple(keys), tuple(adds))
    driver_sql.run_many(session, stmt, [{**k, **a} for k, a in rows])


def state(session: Session, limits: Limits, now: datetime) -> KeyState:
    key_id = limits.key_id
    first_day = period_start_day(limits.budget_period, now)
    spent_q = select(func.coalesce(func.sum(col(KeyDailySpend.spent_picousd)), 0)).where(
        col(KeyDailySpend.virtual_key_id) == key_id
    )
    if first_day is not None:
        spent_q = spent_q.where(col(KeyDailySpend.day) >= first_day)
    inflight = session.exec(
        select(
            func.count(),
            func.coalesce(func.sum(col(InflightRequest.reserved_picousd)), 0),
            func.coalesce(func.sum(col(InflightRequest.reserved_tokens)), 0),
        ).where(
            col(InflightRequest.virtual_key_id) == key_id,
            col(InflightRequest.expires_at) > now,
        )
    ).one()
    minute = session.get(KeyMinuteUsage, (key_id, minute_index(now)))
    return KeyState(
        spent_picousd=int(session.exec(spent_q).one()),
        reserved_picousd=int(inflight[1]),
        inflight=int(inflight[0]),
        minute_requests=minute.requests if minute else 0,
        minute_tokens=(minute.tokens if minute else 0) + int(inflight[2]),
    )


def average_cost_today(session: Session, key_id: str, now: datetime) -> int:
    row = session.get(KeyDailySpend, (key_id, day_key(now)))
    return row.spent_picousd // row.requests if row and row.requests else 0


def admit(
    *,
    session: Session,
    limits: Limits,
    request_id: str,
    now: datetime,
    reserve_picousd: int,
    reserve_tokens: int,
    ttl: timedelta,
    instance_id: str | None = None,
) -> None:
    """Admit one request or raise LimitExceeded; commits either way (nothing on refusal).
    The reservation belongs to ``instance_id`` (released if that gateway dies)."""
    _lock(session, limits.key_id)
    try:
        _check(session, limits, now, reserve_tokens)
    except LimitExceeded:
        session.rollback()
        raise
    reserve = max(reserve_picousd, average_cost_today(session, limits.key_id, now))
    session.add(
        InflightRequest(
            request_id=request_id,
            virtual_key_id=limits.key_id,
            started_at=now,
            expires_at=now + ttl,
            reserved_picousd=reserve,
            reserved_tokens=reserve_tokens,
            instance_id=instance_id,
        )
    )
    minute = {"virtual_key_id": limits.key_id, "minute": minute_index(now)}
    _upsert_add(session, KeyMinuteUsage, [(minute, {"requests": 1, "tokens": 0})])
    session.commit()


def _check(session: Session, limits: Limits, now: datetime, reserve_tokens: int) -> None:
    session.execute(
        delete(InflightRequest).where(
            col(InflightRequest.virtual_key_id) == limits.key_id,
            col(InflightRequest.expires_at) <= now,
        )
    )
    s = state(session, limits, now)
    wait = seconds_to_next_minute(now)
    if limits.max_parallel is not None and s.inflight >= limits.max_parallel:
        raise LimitExceeded("parallel", f"at most {limits.max_parallel} requests at once", 1)
    if limits.rpm is not None and s.minute_requests >= limits.rpm:
        raise LimitExceeded("rpm", f"rate limit of {limits.rpm} requests per minute", wait)
    # a request larger than the whole TPM still runs alone in an empty minute
    tpm_full = s.minute_tokens > 0 and s.minute_tokens + reserve_tokens > (limits.tpm or 0)
    if limits.tpm is not None and tpm_full:
        raise LimitExceeded("tpm", f"rate limit of {limits.tpm} tokens per minute", wait)
    spend = s.spent_picousd + s.reserved_picousd
    if limits.budget_picousd is not None and spend >= limits.budget_picousd:
        raise LimitExceeded("budget", "the key's budget is exhausted")


def settle(session: Session, records: Sequence[UsageRecord | UsageRow]) -> None:
    """Fold freshly stored usage records into the counters (caller commits)."""
    keyed = [r for r in records if r.virtual_key_id]
    if not keyed:
        return
    ids = [r.request_id for r in keyed]
    driver_sql.matching(session, "DELETE FROM {table} WHERE {where}", INFLIGHT, "request_id", ids)
    days: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    minutes: dict[tuple[str, int], int] = defaultdict(int)
    for r in keyed:
        assert r.virtual_key_id is not None
        d = days[(r.virtual_key_id, day_key(r.created_at))]
        d[0] += r.cost_picousd or 0
        d[1] += 1
        minutes[(r.virtual_key_id, minute_index(r.created_at))] += r.input_tokens + r.output_tokens
    _upsert_add(
        session,
        KeyDailySpend,
        [
            ({"virtual_key_id": key_id, "day": day}, {"spent_picousd": spent, "requests": n})
            for (key_id, day), (spent, n) in sorted(days.items())
        ],
    )
    _upsert_add(
        session,
        KeyMinuteUsage,
        [
            ({"virtual_key_id": key_id, "minute": minute}, {"requests": 0, "tokens": tokens})
            for (key_id, minute), tokens in sorted(minutes.items())
        ],
    )


def release(session: Session, request_id: str) -> None:
    """Drop one reservation (a request admitted but never forwarded); commits."""
    session.execute(delete(InflightRequest).where(col(InflightRequest.request_id) == request_id))
    session.commit()


@dataclass(frozen=True)
class Swept:
    minute_rows: int
    expired_reservations: int


def sweep(session: Session, now: datetime, *, keep_minutes: int = 5) -> Swept:
    """Delete per-minute counters older than ``keep_minutes`` (RPM and TPM read only the
    current minute) and reservations past their expiry; commits."""
    minutes = session.execute(
        delete(KeyMinuteUsage).where(col(KeyMinuteUsage.minute) < minute_index(now) - keep_minutes)
    ).rowcount  # type: ignore[attr-defined]
    expired = session.execute(
        delete(InflightRequest).where(col(InflightRequest.expires_at) <= now)
    ).rowcount  # type: ignore[attr-defined]
    session.commit()
    return Swept(minute_rows=int(minutes or 0), expired_reservations=int(expired or 0))
