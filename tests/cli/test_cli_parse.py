from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from cli.parse import (
    MAX_PICOUSD,
    parse_decimal_price,
    parse_duration,
    parse_list,
    parse_moment,
    parse_status,
    parse_usd,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        ("2w", timedelta(weeks=2)),
        ("36525d", timedelta(days=36525)),
        (" 7D ", timedelta(days=7)),
    ],
)
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "30", "d", "3x", "1.5h", "-5d", "0d", "30 days", "36526d", "9" * 30 + "d"]
)
def test_bad_durations_raise_value_error(text):
    with pytest.raises(ValueError, match=r"duration|too long"):
        parse_duration(text)


def test_plain_date_is_start_of_day_or_start_of_next_day():
    assert parse_moment("2025-01-31") == datetime(2025, 1, 31, tzinfo=UTC)
    assert parse_moment("2025-01-31", end_of_day=True) == datetime(2025, 2, 1, tzinfo=UTC)


def test_iso_times_are_converted_to_utc_and_naive_ones_taken_as_utc():
    assert parse_moment("2025-01-31T12:00:00Z") == datetime(2025, 1, 31, 12, tzinfo=UTC)
    assert parse_moment("2025-01-31T12:00:00+02:00") == datetime(2025, 1, 31, 10, tzinfo=UTC)
    assert parse_moment("2025-01-31 12:30") == datetime(2025, 1, 31, 12, 30, tzinfo=UTC)
    # a time is an exact bound, end_of_day only affects plain dates
    assert parse_moment("2025-01-31T12:00Z", end_of_day=True) == datetime(
        2025, 1, 31, 12, tzinfo=UTC
    )


@pytest.mark.parametrize("text", ["yesterday", "2025-13-01", "2025-02-30", "31/01/2025", ""])
def test_bad_dates_raise_value_error(text):
    with pytest.raises(ValueError, match="not a date"):
        parse_moment(text)


@pytest.mark.parametrize(
    ("text", "picousd"),
    [
        ("5", 5 * 10**12),
        ("5.00", 5 * 10**12),
        ("$12.50", 12_500_000_000_000),
        ("0.000000000001", 1),
        ("0", 0),
        ("1e2", 100 * 10**12),
        ("9223372.036854775807", MAX_PICOUSD),
    ],
)
def test_usd_amounts_become_exact_picodollars(text, picousd):
    assert parse_usd(text) == picousd


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-1", "negative"),
        ("NaN", "not a USD amount"),
        ("Infinity", "not a USD amount"),
        ("ten", "not a USD amount"),
        ("", "not a USD amount"),
        ("0.0000000000001", "more than 12 decimals"),
        ("9223372.036854775808", "too large"),
        ("1e999999999", "too large"),
    ],
)
def test_bad_usd_amounts_raise_value_error(text, message):
    with pytest.raises(ValueError, match=message):
        parse_usd(text)


def test_prices_keep_their_exact_decimal_value():
    assert parse_decimal_price("0.075") == Decimal("0.075")
    with pytest.raises(ValueError, match="negative"):
        parse_decimal_price("-0.1")


def test_comma_lists_drop_blanks():
    assert parse_list("a, b,,c ") == ("a", "b", "c")
    assert parse_list("") == ()


def test_a_status_is_an_http_code_or_the_word_error() -> None:
    assert parse_status(" 429 ") == 429
    assert parse_status("ERROR") == "error"
    for bad in ("99", "600", "4xx", "", "-1"):
        with pytest.raises(ValueError, match="not an HTTP status"):
            parse_status(bad)


def test_times_print_as_utc_iso_with_z():
    from addon.moments import iso_or_none, iso_utc

    cet = timezone(timedelta(hours=1))
    assert iso_utc(datetime(2025, 1, 31, 13, 0, 5, 250, tzinfo=cet)) == "2025-01-31T12:00:05Z"
    assert iso_utc(datetime(2025, 1, 31, 12, 0, 5, 250)) == "2025-01-31T12:00:05Z"  # naive: UTC
    stamp = iso_utc(datetime(2025, 1, 31, 12, 0, 5, 250, tzinfo=UTC), timespec="auto")
    assert stamp == "2025-01-31T12:00:05.000250Z"
    assert iso_or_none(None) is None
