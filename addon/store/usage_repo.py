"""Usage records: idempotent batch inserts and grouped reports."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from typing import cast as typing_cast

from sqlalchemy import ColumnElement, Select, String, Table, cast, func, insert
from sqlmodel import Session, col, select

from addon.store.limits_repo import settle
from addon.store.models import UsageRecord
from addon.store.rows import UsageRow, as_dict

USAGE_TABLE: Table = UsageRecord.__table__  # type: ignore[attr-defined]

GROUPS = {
    "project": "project",
    "key": "key_id",
    "model": "model",
    "provider": "provider",
    "day": "day",
}
TOKEN_FIELDS = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
)


def insert_records(*, session: Session, records: Sequence[UsageRecord | UsageRow]) -> int:
    """Insert records whose request_id is not stored yet (spool replays are safe), and
    settle them into the budget and rate counters in the same transaction.

    A Core executemany insert: several times cheaper than the ORM unit of work, which
    matters because the writer thread shares the GIL with the proxy's event loop.
    """
    if not records:
        return 0
    ids = [r.request_id for r in records]
    existing = set(
        session.exec(select(UsageRecord.request_id).where(col(UsageRecord.request_id).in_(ids)))
    )
    fresh = [r for r in records if r.request_id not in existing]
    if fresh:
        session.execute(insert(USAGE_TABLE), [as_dict(r) for r in fresh])
    settle(session, fresh)
    session.commit()
    return len(fresh)


def _group_column(session: Session, by: str) -> ColumnElement[Any]:
    if by == "project":
        return typing_cast(ColumnElement[Any], col(UsageRecord.project))
    if by == "key":
        return typing_cast(ColumnElement[Any], col(UsageRecord.virtual_key_id))
    if by == "model":
        return typing_cast(ColumnElement[Any], col(UsageRecord.model))
    if by == "provider":
        return typing_cast(ColumnElement[Any], col(UsageRecord.provider))
    if by == "day":
        if session.get_bind().dialect.name == "postgresql":
            return func.to_char(func.timezone("UTC", col(UsageRecord.created_at)), "YYYY-MM-DD")
        return func.substr(cast(col(UsageRecord.created_at), String), 1, 10)
    raise ValueError(f"cannot group by {by!r}; use one of {', '.join(GROUPS)}")


def report(
    *,
    session: Session,
    by: str,
    since: datetime | None = None,
    until: datetime | None = None,
    project: str | None = None,
) -> list[dict[str, Any]]:
    """One dict per group: the group value, request count, token sums, cost and unpriced counts.

    ``cost_picousd`` sums priced requests only; ``unpriced_requests`` and the ``unpriced_*``
    token sums say how much usage has no known price (never counted as $0).
    """
    group = _group_column(session, by).label("grp")
    stmt = select(group, *aggregate_columns()).group_by(group).order_by(group)
    stmt = within(stmt, since=since, until=until, project=project)
    rows = session.exec(stmt).all()
    out = []
    for row in rows:
        d = dict(row._mapping)
        d[GROUPS[by]] = d.pop("grp")
        out.append(d)
    return out


def aggregate_columns() -> list[Any]:
    """The sums of a report row over usage records: requests, tokens, cost, unpriced,
    estimated and error counts (shared with the raw-record reports by user and tag)."""
    priced = col(UsageRecord.cost_picousd).is_not(None)
    unpriced = col(UsageRecord.cost_picousd).is_(None)
    columns: list[Any] = [func.count().label("requests")]
    columns += [func.coalesce(func.sum(getattr(UsageRecord, f)), 0).label(f) for f in TOKEN_FIELDS]
    columns += [
        func.coalesce(func.sum(col(UsageRecord.cost_picousd)), 0).label("cost_picousd"),
        func.count().filter(unpriced).label("unpriced_requests"),
        func.coalesce(func.sum(col(UsageRecord.input_tokens)).filter(unpriced), 0).label(
            "unpriced_input_tokens"
        ),
        func.coalesce(func.sum(col(UsageRecord.output_tokens)).filter(unpriced), 0).label(
            "unpriced_output_tokens"
        ),
        func.count().filter(col(UsageRecord.estimated)).label("estimated_requests"),
        func.count().filter(col(UsageRecord.error_kind).is_not(None)).label("error_requests"),
        func.count().filter(priced).label("priced_requests"),
    ]
    return columns


def within[S: Select[Any]](
    stmt: S,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    project: str | None = None,
) -> S:
    """``stmt`` limited to the records in [since, until) of one project."""
    if since is not None:
        stmt = stmt.where(col(UsageRecord.created_at) >= since)
    if until is not None:
        stmt = stmt.where(col(UsageRecord.created_at) < until)
    if project is not None:
        stmt = stmt.where(col(UsageRecord.project) == project)
    return stmt


def list_records(*, session: Session, limit: int = 1000) -> list[UsageRecord]:
    stmt = select(UsageRecord).order_by(col(UsageRecord.id).desc()).limit(limit)
    return list(session.exec(stmt))
