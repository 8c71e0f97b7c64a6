"""What a usage report is made of, without SQLAlchemy: its groupings, dimensions and measures,
how a period splits into whole hours and partial ones, and the stable shape of one group.

``usage_repo.report`` (SQLAlchemy) and ``quick_report.report`` (the DB-API driver alone, for
a fast ``tollkeeper usage``) both build on these, so the two cannot drift in what they sum.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from addon.pricing.cost import usd_text

# --by value -> field name in the output
GROUPS = {
    "project": "project",
    "key": "key_id",
    "model": "model",
    "provider": "provider",
    "day": "day",
}
# --by values read from the raw records only (end users are unbounded: no rollups)
ATTRIBUTION_GROUPS = {"user": "user", "tag": "tag"}

# (record attribute, column length): the one list of what the rollups group by
DIMENSIONS: tuple[tuple[str, int], ...] = (
    ("virtual_key_id", 16),
    ("project", 200),
    ("model", 200),
    ("provider", 64),
)
DIMENSION_NAMES = tuple(name for name, _ in DIMENSIONS)
# --by value -> the record column it groups by ("day" is computed from the time)
GROUP_COLUMNS = {
    "project": "project",
    "key": "virtual_key_id",
    "model": "model",
    "provider": "provider",
}
# --by values the rollups answer; any other grouping is summed from the raw records
ROLLUP_GROUPS = frozenset({"day", *(by for by, c in GROUP_COLUMNS.items() if c in DIMENSION_NAMES)})

TOKEN_FIELDS = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
)
# the summed quantities, in the rollups' column order (``rollups.MEASURES`` defines each)
MEASURE_NAMES = (
    "requests",
    *TOKEN_FIELDS,
    "cost_picousd",
    "priced_requests",
    "unpriced_requests",
    "unpriced_input_tokens",
    "unpriced_output_tokens",
    "estimated_requests",
    "error_requests",
)
# a report row's counts as `tollkeeper usage --format json` and the dashboard show them
COUNT_FIELDS = ("requests", *TOKEN_FIELDS)
TAIL_FIELDS = (
    "unpriced_requests",
    "unpriced_input_tokens",
    "unpriced_output_tokens",
    "estimated_requests",
    "error_requests",
)

Span = tuple[datetime | None, datetime | None]  # [since, until); None = open


def report_item(row: dict[str, Any], group_field: str) -> dict[str, Any]:
    """One group of a report in its stable JSON shape (the CLI's JSON/CSV and the
    dashboard): ``cost_usd`` is None when no request of the group has a price."""
    out: dict[str, Any] = {group_field: row[group_field]}
    out.update({f: int(row[f]) for f in COUNT_FIELDS})
    unpriced = int(row["unpriced_requests"])
    all_unpriced = unpriced > 0 and unpriced == out["requests"]
    out["cost_usd"] = None if all_unpriced else usd_text(int(row["cost_picousd"]))
    out.update({f: int(row[f]) for f in TAIL_FIELDS})
    return out


def total_item(rows: list[dict[str, Any]], group_field: str, label: str | None) -> dict[str, Any]:
    """The item of ``rows`` (report rows, or items that kept ``cost_picousd``) summed: a
    TOTAL line whose group value is ``label``."""
    summed = (*COUNT_FIELDS, "cost_picousd", *TAIL_FIELDS)
    sums = {f: sum(int(r[f]) for r in rows) for f in summed}
    return report_item({group_field: label, **sums}, group_field)


def hour_of(moment: datetime) -> datetime:
    """The start of the UTC hour a moment falls in (a naive moment is taken as UTC)."""
    if moment.tzinfo is not UTC:  # the writer's records are in UTC already: skip the work
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.replace(minute=0, second=0, microsecond=0)


def _ceil_hour(moment: datetime) -> datetime:
    start = hour_of(moment)
    return start if start == moment else start + timedelta(hours=1)


def spans(since: datetime | None, until: datetime | None) -> tuple[Span | None, list[Span]]:
    """The whole hours of [since, until) the rollups answer, and the partial spans left to
    the raw records (at most one before and one after the whole hours)."""
    lo = _ceil_hour(since) if since is not None else None
    hi = hour_of(until) if until is not None else None
    if lo is not None and hi is not None and lo >= hi:
        return None, [(since, until)]
    raw: list[Span] = []
    if since is not None and lo is not None and since < lo:
        raw.append((since, lo))
    if until is not None and hi is not None and hi < until:
        raw.append((hi, until))
    return (lo, hi), raw
