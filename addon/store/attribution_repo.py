"""Usage by end user and by tag (``addon.attribution``), from the raw usage records.

Per-user and per-tag sums are not kept in rollups (end users are unbounded), so these
reports read ``usage_records`` directly; they have the row shape of ``usage_repo.report``.

Tags are stored in one column as ``a,b``. A tag never holds a comma, a quote or a
backslash (``addon.attribution`` admits none), so ``'["' || replace(tags, ',', '","') ||
'"]'`` is a valid JSON array of the tags, which both databases can expand into rows with
their built-in JSON functions: SQLite's ``json_each`` and PostgreSQL's
``json_array_elements_text``. One request with tags a,b counts fully under a and under b;
a request without tags falls under the empty tag, reported as None.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from typing import cast as typing_cast

from sqlalchemy import JSON, ColumnElement, FromClause, cast, func, literal, select, true
from sqlmodel import Session, col

from addon.store.models import UsageRecord
from addon.store.report_fields import ATTRIBUTION_GROUPS
from addon.store.usage_repo import USAGE_TABLE, aggregate_columns, within

GROUPS = ATTRIBUTION_GROUPS  # --by value -> field name in the output


def report(
    *,
    session: Session,
    by: str,
    since: datetime | None = None,
    until: datetime | None = None,
    project: str | None = None,
) -> list[dict[str, Any]]:
    """One dict per end user or tag, as ``usage_repo.report`` gives per project."""
    if by == "user":
        group: ColumnElement[Any] = typing_cast(ColumnElement[Any], col(UsageRecord.end_user))
        stmt = select(group.label("grp"), *aggregate_columns())
    elif by == "tag":
        tags = _tag_rows(session)
        group = tags.c.value
        stmt = select(group.label("grp"), *aggregate_columns()).select_from(
            USAGE_TABLE.join(tags, true())
        )
    else:
        raise ValueError(f"cannot group by {by!r}; use one of {', '.join(GROUPS)}")
    stmt = within(stmt.group_by(group).order_by(group), since=since, until=until, project=project)
    out = []
    for row in session.execute(stmt).all():
        d = dict(row._mapping)
        grp = d.pop("grp")
        d[GROUPS[by]] = grp or None  # "" (no tags) reads as "none"
        out.append(d)
    return out


def _tag_rows(session: Session) -> FromClause:
    """The tags of each record as rows (one column, ``value``), joined per record."""
    as_json = literal('["') + func.replace(col(UsageRecord.tags), ",", '","') + literal('"]')
    if session.get_bind().dialect.name == "postgresql":
        # a function in FROM may refer to the tables before it (implicitly LATERAL)
        fn = func.json_array_elements_text(cast(as_json, JSON))
        return fn.table_valued("value").render_derived(name="tag_rows")
    return func.json_each(as_json).table_valued("value", name="tag_rows")
