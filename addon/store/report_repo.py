"""Queries the usage dashboard needs beyond ``usage_repo.report``: a time series per project,
the error kinds, and the latest records of a project or key.

The per-group totals (projects, models, keys) come from ``usage_repo.report``, so the
dashboard's numbers are the ones ``tollkeeper usage`` prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, String, cast, func
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from addon.store.models import UsageRecord

BUCKET_CHARS = {"day": 10, "hour": 13}  # prefix of the ISO time: 2025-01-31 / 2025-01-31 12
PG_FORMATS = {"day": "YYYY-MM-DD", "hour": "YYYY-MM-DD HH24"}


@dataclass(frozen=True)
class Filter:
    """Which records: a half-open time range, a project and a virtual key (None = any)."""

    since: datetime | None = None
    until: datetime | None = None
    project: str | None = None
    key_id: str | None = None

    def apply(self, stmt: Any) -> Any:
        if self.since is not None:
            stmt = stmt.where(col(UsageRecord.created_at) >= self.since)
        if self.until is not None:
            stmt = stmt.where(col(UsageRecord.created_at) < self.until)
        if self.project is not None:
            stmt = stmt.where(col(UsageRecord.project) == self.project)
        if self.key_id is not None:
            stmt = stmt.where(col(UsageRecord.virtual_key_id) == self.key_id)
        return stmt


def bucket_column(session: Session, bucket: str) -> ColumnElement[Any]:
    """The UTC day (``2025-01-31``) or hour (``2025-01-31 12``) of a record, as text."""
    if bucket not in BUCKET_CHARS:
        raise ValueError(f"bucket must be day or hour, not {bucket!r}")
    created = col(UsageRecord.created_at)
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", created), PG_FORMATS[bucket])
    return func.substr(cast(created, String), 1, BUCKET_CHARS[bucket])


def series(*, session: Session, bucket: str, where: Filter) -> list[dict[str, Any]]:
    """One dict per (project, bucket) with data: requests, tokens, priced cost, errors."""
    grp = bucket_column(session, bucket).label("bucket")
    columns: list[Any] = [col(UsageRecord.project), grp, func.count().label("requests")]
    columns += [
        func.coalesce(func.sum(col(getattr(UsageRecord, f))), 0).label(f)
        for f in ("input_tokens", "output_tokens", "cost_picousd")
    ]
    columns.append(func.count().filter(col(UsageRecord.error_kind).is_not(None)).label("errors"))
    stmt = (
        select(*columns)
        .group_by(col(UsageRecord.project), grp)
        .order_by(grp, col(UsageRecord.project))
    )
    return [dict(r._mapping) for r in session.exec(where.apply(stmt)).all()]


def error_kinds(*, session: Session, where: Filter) -> list[dict[str, Any]]:
    """Records that ended in an error, by kind; ``upstream`` says whether a real key was used
    (False: the gateway itself refused or failed the request)."""
    upstream = col(UsageRecord.real_key_label).is_not(None).label("upstream")
    stmt = (
        select(col(UsageRecord.error_kind), upstream, func.count().label("requests"))
        .where(col(UsageRecord.error_kind).is_not(None))
        .group_by(col(UsageRecord.error_kind), upstream)
        .order_by(func.count().desc(), col(UsageRecord.error_kind))
    )
    return [dict(r._mapping) for r in session.exec(where.apply(stmt)).all()]


def recent(*, session: Session, where: Filter, limit: int = 50) -> list[UsageRecord]:
    """The latest records matching ``where``, newest first."""
    stmt: SelectOfScalar[UsageRecord] = select(UsageRecord)
    stmt = where.apply(stmt).order_by(col(UsageRecord.id).desc()).limit(limit)
    return list(session.exec(stmt))
