"""The per-request log: usage records one by one, newest first, filtered.

Read from the raw records (reports read rollups; this never does). A model glob is first
narrowed in SQL with ``LIKE`` (which matches at least what the glob matches) and then
checked exactly with ``fnmatch``, page by page, so ``limit`` counts matching records only.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_
from sqlmodel import Session, col, select

from addon.store.models import UsageRecord
from addon.store.reprice import like_pattern

ERROR = "error"  # the --status value for every failed request
PAGE_MIN = 200


@dataclass(frozen=True)
class LogFilter:
    """Which records: all given conditions hold. ``status`` is an HTTP status or "error"
    (an error kind was recorded, or the status is 400 or above); ``model_glob`` is
    case-insensitive; [since, until) in UTC."""

    project: str | None = None
    key_id: str | None = None
    model_glob: str | None = None
    status: int | str | None = None
    since: datetime | None = None
    until: datetime | None = None


def request_log(*, session: Session, where: LogFilter, limit: int = 50) -> list[UsageRecord]:
    """At most ``limit`` records matching ``where``, newest first (ties: last stored first)."""
    glob = where.model_glob.lower() if where.model_glob else None
    out: list[UsageRecord] = []
    after: tuple[datetime, int] | None = None
    page = max(limit, PAGE_MIN) if glob else limit
    while len(out) < limit:
        rows = list(session.exec(_page(where, glob, after).limit(page)))
        if not rows:
            break
        out += [r for r in rows if glob is None or _model_matches(r.model, glob)]
        if len(rows) < page:
            break
        last = rows[-1]
        after = (last.created_at, last.id or 0)
    return out[:limit]


def _model_matches(model: str | None, glob: str) -> bool:
    return model is not None and fnmatch.fnmatchcase(model.lower(), glob)


def _page(where: LogFilter, glob: str | None, after: tuple[datetime, int] | None) -> Any:
    created, rid = col(UsageRecord.created_at), col(UsageRecord.id)
    stmt = select(UsageRecord).where(*_conditions(where))
    if glob is not None:
        stmt = stmt.where(func.lower(col(UsageRecord.model)).like(like_pattern(glob), escape="\\"))
    if after is not None:  # keyset paging: strictly after the last row of the previous page
        stmt = stmt.where(or_(created < after[0], and_(created == after[0], rid < after[1])))
    return stmt.order_by(created.desc(), rid.desc())


def _conditions(where: LogFilter) -> list[Any]:
    out: list[Any] = []
    if where.project is not None:
        out.append(col(UsageRecord.project) == where.project)
    if where.key_id is not None:
        out.append(col(UsageRecord.virtual_key_id) == where.key_id)
    if where.since is not None:
        out.append(col(UsageRecord.created_at) >= where.since)
    if where.until is not None:
        out.append(col(UsageRecord.created_at) < where.until)
    if where.status == ERROR:
        status = col(UsageRecord.status_code)
        out.append(or_(col(UsageRecord.error_kind).is_not(None), status >= 400))
    elif isinstance(where.status, int):
        out.append(col(UsageRecord.status_code) == where.status)
    return out
