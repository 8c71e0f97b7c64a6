"""Usage records: idempotent batch inserts (with their hourly rollups) and grouped reports."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    String,
    Table,
    cast,
    func,
    insert,
    union_all,
)
from sqlmodel import Session, col, select

from addon.store import driver_sql, rollups
from addon.store.limits_repo import settle
from addon.store.models import UsageRecord
from addon.store.report_fields import (
    GROUP_COLUMNS,
    GROUPS,
    MEASURE_NAMES,
    ROLLUP_GROUPS,
    TOKEN_FIELDS,
    Span,
    spans,
)
from addon.store.rows import UsageRow, as_dict

USAGE_TABLE: Table = UsageRecord.__table__  # type: ignore[attr-defined]
INSERT = insert(USAGE_TABLE).inline()  # no RETURNING of the id: nothing reads it
EXISTING = "SELECT request_id FROM {table} WHERE {where}"


def insert_records(*, session: Session, records: Sequence[UsageRecord | UsageRow]) -> int:
    """Insert records whose request_id is not stored yet (spool replays are safe), and
    settle them into the budget and rate counters and add them to the hourly rollups, all in
    the same transaction.

    The driver's own SQL (``addon.store.driver_sql``): several times cheaper than the ORM
    unit of work or even Core, which matters because the writer thread shares the GIL with
    the proxy's event loop.
    """
    if not records:
        return 0
    ids = [r.request_id for r in records]
    found = driver_sql.matching(session, EXISTING, USAGE_TABLE, "request_id", ids)
    existing = {row[0] for row in found}
    fresh = [r for r in records if r.request_id not in existing]
    driver_sql.run_many(session, INSERT, [as_dict(r) for r in fresh])
    settle(session, fresh)
    # after the spend counters, as usage reprice does: one lock order, no deadlock
    rollups.add(session, fresh)
    session.commit()
    return len(fresh)


# --- the report: hourly rollups, plus raw records for the partial hours at its edges -------


def _dim(table: Table, name: str) -> ColumnElement[Any]:
    return rollups.dimension(name) if table is rollups.HOURLY else table.c[name]


def _group_column(session: Session, by: str, table: Table) -> ColumnElement[Any]:
    """The --by value of a raw record (``table`` is the raw table) or of a rollup row."""
    if by == "day":
        moment = table.c.hour if table is rollups.HOURLY else table.c.created_at
        if session.get_bind().dialect.name == "postgresql":
            return func.to_char(func.timezone("UTC", moment), "YYYY-MM-DD")
        return func.substr(cast(moment, String), 1, 10)
    if by in GROUP_COLUMNS:
        return _dim(table, GROUP_COLUMNS[by])
    raise ValueError(f"cannot group by {by!r}; use one of {', '.join(GROUPS)}")


def _part(session: Session, by: str, table: Table, span: Span, project: str | None) -> Select[Any]:
    """Per group value, the measures of the rollup rows (or raw records) in ``span``."""
    if table is rollups.HOURLY:
        moment, project_col = table.c.hour, rollups.dimension("project")
        measures: list[ColumnElement[Any]] = [table.c[m] for m in MEASURE_NAMES]
    else:
        moment, project_col, measures = table.c.created_at, table.c.project, rollups.raw_measures()
    stmt: Select[Any] = select(_group_column(session, by, table).label("grp"), *measures)
    lo, hi = span
    if lo is not None:
        stmt = stmt.where(moment >= lo)
    if hi is not None:
        stmt = stmt.where(moment < hi)
    if project is not None:
        stmt = stmt.where(project_col == project)
    return stmt


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

    Whole UTC hours come from the rollups (``addon.store.rollups``); a ``since`` or ``until``
    inside an hour is exact, that partial hour being summed from the raw records (so a
    partial hour whose raw records were pruned counts nothing).
    """
    _group_column(session, by, USAGE_TABLE)  # an unknown grouping fails before any query
    if by in ROLLUP_GROUPS:
        whole, partial = spans(since, until)
    else:
        whole, partial = None, [(since, until)]
    parts = [_part(session, by, USAGE_TABLE, span, project) for span in partial]
    if whole is not None:
        parts.append(_part(session, by, rollups.HOURLY, whole, project))
    u = union_all(*parts).subquery()
    sums = [cast(func.sum(u.c[m]), BigInteger).label(m) for m in MEASURE_NAMES]
    rows = session.execute(select(u.c.grp, *sums).group_by(u.c.grp).order_by(u.c.grp)).all()
    out = []
    for row in rows:
        d = dict(row._mapping)
        d[GROUPS.get(by, by)] = d.pop("grp")
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
