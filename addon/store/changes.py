"""What changed since the gateway last looked: audit events read by id.

Every admin change writes an audit event in its own transaction, so the events newer than
the last one seen name exactly the virtual keys to re-read (``key.*`` events target a key
id); any other event (real keys, providers, prices) means the small tables are re-read.
Ids come from a sequence: on PostgreSQL a transaction that took an id may commit after one
with a higher id, so the last ``OVERLAP_IDS`` ids are looked at again and the ones already
seen are skipped. Real-key health, written by gateways without an audit event, is watched
separately (``real_keys_mark``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select

from addon.store.models import AuditEvent, RealKey

OVERLAP_IDS = 100
MAX_EVENTS = 2_000  # more than this at once: a full reload is cheaper than key by key


@dataclass(frozen=True)
class Cursor:
    last_id: int
    seen: frozenset[int]  # ids within the overlap window already applied


@dataclass(frozen=True)
class Changes:
    key_ids: frozenset[str]  # virtual keys to re-read
    others: bool  # real keys, providers or prices changed (or an event of unknown kind)
    full: bool  # too many, or the history went backwards (a restored database): reload all


def _window(session: Session, after: int) -> list[tuple[int, str, str]]:
    stmt = (
        select(col(AuditEvent.id), col(AuditEvent.action), col(AuditEvent.target))
        .where(col(AuditEvent.id) > after)
        .order_by(col(AuditEvent.id))
        .limit(OVERLAP_IDS + MAX_EVENTS + 1)
    )
    return [(int(i or 0), a, t) for i, a, t in session.exec(stmt)]


def head(session: Session) -> Cursor:
    """The cursor of everything that is in the database now (taken before a full read)."""
    last = session.exec(select(func.max(AuditEvent.id))).one() or 0
    ids = [i for i, _, _ in _window(session, last - OVERLAP_IDS)]
    return Cursor(last_id=max([last, *ids]), seen=frozenset(ids))


def read(session: Session, cursor: Cursor) -> tuple[Changes, Cursor]:
    """The changes after ``cursor`` and the cursor to keep once they are applied."""
    rows = _window(session, cursor.last_id - OVERLAP_IDS)
    fresh = [r for r in rows if r[0] not in cursor.seen]
    last = max([cursor.last_id, *(i for i, _, _ in rows)])
    went_back = cursor.last_id > 0 and not any(i >= cursor.last_id for i, _, _ in rows)
    if went_back or len(fresh) > MAX_EVENTS:
        return Changes(frozenset(), True, full=True), cursor
    key_ids = frozenset(t for _, a, t in fresh if a.startswith("key."))
    others = any(not a.startswith("key.") for _, a, _ in fresh)
    seen = frozenset(i for i, _, _ in rows if i > last - OVERLAP_IDS)
    return Changes(key_ids, others, full=False), Cursor(last_id=last, seen=seen)


def real_keys_mark(session: Session) -> tuple[object, ...]:
    """Changes whenever a real key is added, removed or its health is written."""
    return tuple(session.exec(select(func.count(), func.max(RealKey.updated_at))).one())
