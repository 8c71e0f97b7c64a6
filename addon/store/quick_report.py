"""``tollkeeper usage`` by project, key, model, provider or day, with the DB-API driver alone.

The query ``usage_repo.report`` builds with SQLAlchemy, written out as SQL text for SQLite and
PostgreSQL and run through ``quick.fetch``: the whole hours of the period from the hourly
rollups, the partial hours at its edges from the raw records, summed per group in one
statement. The report itself takes milliseconds; importing SQLAlchemy took most of the
command's time. None whenever ``quick.fetch`` is unsure, or for a grouping the rollups do
not answer (user, tag): the caller then takes the full path. The tests hold the two paths
equal, group for group, on both databases.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from addon.store import quick
from addon.store.report_fields import (
    DIMENSION_NAMES,
    GROUP_COLUMNS,
    GROUPS,
    MEASURE_NAMES,
    ROLLUP_GROUPS,
    TOKEN_FIELDS,
    Span,
    spans,
)

# each measure of one raw record (``rollups.MEASURES``' of_raw), as SQL over usage_records
RAW_MEASURES: dict[str, str] = {
    "requests": "1",
    **{field: field for field in TOKEN_FIELDS},
    "cost_picousd": "COALESCE(cost_picousd, 0)",
    "priced_requests": "CASE WHEN cost_picousd IS NOT NULL THEN 1 ELSE 0 END",
    "unpriced_requests": "CASE WHEN cost_picousd IS NULL THEN 1 ELSE 0 END",
    "unpriced_input_tokens": "CASE WHEN cost_picousd IS NULL THEN input_tokens ELSE 0 END",
    "unpriced_output_tokens": "CASE WHEN cost_picousd IS NULL THEN output_tokens ELSE 0 END",
    "estimated_requests": "CASE WHEN estimated THEN 1 ELSE 0 END",
    "error_requests": "CASE WHEN error_kind IS NOT NULL THEN 1 ELSE 0 END",
}


def report(
    url: str,
    *,
    by: str,
    since: datetime | None = None,
    until: datetime | None = None,
    project: str | None = None,
) -> list[dict[str, Any]] | None:
    """What ``usage_repo.report`` returns, or None when only the full path can tell."""
    if by not in ROLLUP_GROUPS:
        return None
    rows = quick.fetch(url, lambda dialect: query(dialect, by, since, until, project))
    if rows is None:
        return None
    field = GROUPS[by]
    return [{field: row[0], **dict(zip(MEASURE_NAMES, row[1:], strict=True))} for row in rows]


def query(
    dialect: str, by: str, since: datetime | None, until: datetime | None, project: str | None
) -> tuple[str, list[Any]]:
    """The report's SQL and parameters for ``dialect`` ("sqlite" or "postgresql")."""
    if by not in ROLLUP_GROUPS:
        raise ValueError(f"the rollups do not group by {by!r}")
    whole, partial = spans(since, until)
    params: list[Any] = []
    parts = [_part(dialect, by, span, project, params, rollup=False) for span in partial]
    if whole is not None:
        parts.append(_part(dialect, by, whole, project, params, rollup=True))
    sums = ", ".join(f"CAST(SUM({m}) AS BIGINT) AS {m}" for m in MEASURE_NAMES)
    union = " UNION ALL ".join(parts)
    sql = f"SELECT grp, {sums} FROM ({union}) AS u GROUP BY grp ORDER BY grp"  # noqa: S608
    return sql, params


def _part(
    dialect: str, by: str, span: Span, project: str | None, params: list[Any], *, rollup: bool
) -> str:
    """Per group value, the measures of the rollup rows (or raw records) in ``span``; its
    parameters are appended to ``params``."""
    table, moment = ("usage_hourly", "hour") if rollup else ("usage_records", "created_at")
    measures = MEASURE_NAMES if rollup else [f"{sql} AS {m}" for m, sql in RAW_MEASURES.items()]
    mark = "?" if dialect == "sqlite" else "%s"
    where: list[str] = []
    lo, hi = span
    if lo is not None:
        where.append(f"{moment} >= {mark}")
        params.append(_moment(dialect, lo))
    if hi is not None:
        where.append(f"{moment} < {mark}")
        params.append(_moment(dialect, hi))
    if project is not None:
        where.append(f"{_column('project', rollup)} = {mark}")
        params.append(project)
    grp = _day(dialect, moment) if by == "day" else _column(GROUP_COLUMNS[by], rollup)
    sql = f"SELECT {grp} AS grp, {', '.join(measures)} FROM {table}"  # noqa: S608
    return f"{sql} WHERE {' AND '.join(where)}" if where else sql


def _column(name: str, rollup: bool) -> str:
    """A dimension as the records have it (``rollups.dimension``: NULL where its bit is set)."""
    if not rollup:
        return name
    bit = 1 << DIMENSION_NAMES.index(name)
    return f"CASE WHEN (null_dims & {bit}) != 0 THEN NULL ELSE {name} END"


def _day(dialect: str, moment: str) -> str:
    if dialect == "postgresql":
        return f"to_char(timezone('UTC', {moment}), 'YYYY-MM-DD')"
    return f"substr(CAST({moment} AS VARCHAR), 1, 10)"


def _moment(dialect: str, moment: datetime) -> datetime | str:
    """A time as SQLAlchemy binds it for a ``UTCDateTime`` column (naive ones are refused)."""
    if moment.utcoffset() is None:
        raise ValueError("a time without a zone")  # the full path refuses it with its message
    utc = moment.astimezone(UTC)
    return utc if dialect == "postgresql" else utc.strftime("%Y-%m-%d %H:%M:%S.%f")
