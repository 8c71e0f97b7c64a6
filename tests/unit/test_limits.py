"""Budget periods and rate windows (addon/limits.py): UTC calendar arithmetic, every period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from addon.limits import (
    Limits,
    day_key,
    minute_index,
    period_reset,
    period_start_day,
    seconds_to_next_minute,
)

# 01:30 on 1 March in UTC+05:00 is still 28 February in UTC: periods follow UTC
EAST = timezone(timedelta(hours=5))
LATE_FEB_UTC = datetime(2026, 3, 1, 1, 30, tzinfo=EAST)


def test_days_are_utc_days() -> None:
    assert day_key(LATE_FEB_UTC) == "2026-02-28"
    assert day_key(datetime(2026, 3, 1, 0, 0, tzinfo=UTC)) == "2026-03-01"


@pytest.mark.parametrize(
    ("period", "now", "first_day"),
    [
        ("daily", datetime(2026, 3, 17, 23, 59, tzinfo=UTC), "2026-03-17"),
        ("daily", LATE_FEB_UTC, "2026-02-28"),
        ("monthly", datetime(2026, 3, 17, 12, 0, tzinfo=UTC), "2026-03-01"),
        ("monthly", LATE_FEB_UTC, "2026-02-01"),
        ("total", datetime(2026, 3, 17, tzinfo=UTC), None),
    ],
)
def test_the_first_day_that_counts_towards_each_period(
    period: str, now: datetime, first_day: str | None
) -> None:
    assert period_start_day(period, now) == first_day


@pytest.mark.parametrize(
    ("period", "now", "reset"),
    [
        ("daily", datetime(2026, 3, 17, 23, 59, tzinfo=UTC), datetime(2026, 3, 18, tzinfo=UTC)),
        ("daily", LATE_FEB_UTC, datetime(2026, 3, 1, tzinfo=UTC)),
        ("monthly", datetime(2026, 1, 31, 8, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)),
        ("monthly", datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        ("monthly", LATE_FEB_UTC, datetime(2026, 3, 1, tzinfo=UTC)),
        ("total", datetime(2026, 3, 17, tzinfo=UTC), None),
    ],
)
def test_when_each_period_starts_again(period: str, now: datetime, reset: datetime | None) -> None:
    assert period_reset(period, now) == reset


@pytest.mark.parametrize("function", [period_start_day, period_reset])
def test_an_unknown_period_is_an_error(function) -> None:
    with pytest.raises(ValueError, match="unknown budget period 'weekly'"):
        function("weekly", datetime(2026, 3, 17, tzinfo=UTC))


def test_rate_windows_are_utc_minutes() -> None:
    start = datetime(2026, 3, 17, 10, 0, 0, tzinfo=UTC)
    assert minute_index(start + timedelta(seconds=59)) == minute_index(start)
    assert minute_index(start + timedelta(seconds=60)) == minute_index(start) + 1
    assert seconds_to_next_minute(start) == 60
    assert seconds_to_next_minute(start + timedelta(seconds=45, milliseconds=500)) == 15


@pytest.mark.parametrize(
    ("budget", "rpm", "tpm", "parallel", "limited"),
    [
        (None, None, None, None, False),
        (5, None, None, None, True),
        (None, 10, None, None, True),
        (None, None, 1000, None, True),
        (None, None, None, 2, True),
        (0, None, None, None, True),  # a zero budget is a limit, not "unlimited"
    ],
)
def test_any_says_whether_a_key_is_limited_at_all(budget, rpm, tpm, parallel, limited) -> None:
    assert Limits("k", budget, "total", rpm, tpm, parallel).any is limited
