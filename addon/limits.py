"""Budget periods and rate windows: pure calendar arithmetic in UTC.

Budgets are calendar periods: ``daily`` resets at 00:00 UTC, ``monthly`` on the 1st at
00:00 UTC, ``total`` never. RPM and TPM count fixed one-minute windows (UTC minutes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class Limits:
    """The limits of one virtual key (None = unlimited)."""

    key_id: str
    budget_picousd: int | None
    budget_period: str
    rpm: int | None
    tpm: int | None
    max_parallel: int | None

    @property
    def any(self) -> bool:
        return any(
            v is not None for v in (self.budget_picousd, self.rpm, self.tpm, self.max_parallel)
        )


def day_key(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d")


def minute_index(when: datetime) -> int:
    return int(when.timestamp() // 60)


def seconds_to_next_minute(when: datetime) -> int:
    return 60 - int(when.timestamp()) % 60


def period_start_day(period: str, now: datetime) -> str | None:
    """First day (inclusive) whose spend counts towards the budget; None for ``total``."""
    now = now.astimezone(UTC)
    if period == "daily":
        return day_key(now)
    if period == "monthly":
        return now.strftime("%Y-%m-01")
    if period == "total":
        return None
    raise ValueError(f"unknown budget period {period!r}")


def period_reset(period: str, now: datetime) -> datetime | None:
    """When the budget period starts again; None for ``total``."""
    now = now.astimezone(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        return midnight + timedelta(days=1)
    if period == "monthly":
        first = midnight.replace(day=1)
        return (first + timedelta(days=32)).replace(day=1)
    if period == "total":
        return None
    raise ValueError(f"unknown budget period {period!r}")
