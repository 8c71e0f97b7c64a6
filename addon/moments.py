"""Dates and times as people type them (CLI options, the dashboard's query string), and as
reports, audit details and alerts print them; and the current time, always UTC-aware."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_moment(text: str, *, end_of_day: bool = False) -> datetime:
    """``YYYY-MM-DD`` or an ISO 8601 time → an aware UTC datetime.

    A time without an offset is taken as UTC. A plain date means its start, or with
    ``end_of_day`` the start of the next day (so "until 2025-01-31" includes that day).
    """
    raw = text.strip()
    try:
        if _DATE_RE.match(raw):
            day = date.fromisoformat(raw)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start + timedelta(days=1) if end_of_day else start
        moment = datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError as e:
        raise ValueError(
            f"{text!r} is not a date; use YYYY-MM-DD or an ISO time like 2025-01-31T12:00:00Z"
        ) from e
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def iso_utc(moment: datetime, *, timespec: str = "seconds") -> str:
    """A UTC time as ISO 8601 with ``Z``: ``2025-01-31T12:00:00Z`` (``timespec="auto"`` keeps
    the microseconds). A naive time is UTC (SQLite gives stored times back naive)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def iso_or_none(moment: datetime | None, *, timespec: str = "seconds") -> str | None:
    return None if moment is None else iso_utc(moment, timespec=timespec)
