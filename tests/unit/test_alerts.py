"""Budget alert thresholds, crossings, periods and the webhook message (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from addon.alerts import Alert, crossed, message, parse_thresholds, period_of
from addon.pricing.cost import usd_text

USD = 10**12


def test_thresholds_parse_sorted_and_unique():
    assert parse_thresholds(" 100, 50 ,80") == (50, 80, 100)
    assert parse_thresholds("1,1000") == (1, 1000)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "list of percentages"),
        ("50,,80", "list of percentages"),
        ("0", "out of range"),
        ("1001", "out of range"),
        ("50.5", "whole number"),
        ("-5", "whole number"),
        ("abc", "whole number"),
        ("50,80,50", "given twice"),
    ],
)
def test_bad_thresholds_are_refused_with_one_line(text: str, reason: str):
    with pytest.raises(ValueError, match=reason) as e:
        parse_thresholds(text)
    assert "\n" not in str(e.value)


def test_a_threshold_is_crossed_once_spend_reaches_it_exactly():
    budget = 10 * USD
    assert crossed((50, 80, 100), 5 * USD - 1, budget) == []
    assert crossed((50, 80, 100), 5 * USD, budget) == [50]
    assert crossed((50, 80, 100), 10 * USD, budget) == [50, 80, 100]
    assert crossed((50, 150), 15 * USD, budget) == [50, 150]


def test_a_zero_budget_has_every_threshold_crossed():
    assert crossed((50, 100), 0, 0) == [50, 100]


def test_daily_and_monthly_periods_roll_over_at_utc_midnight():
    created = datetime(2026, 1, 5, tzinfo=UTC)
    late = datetime(2026, 12, 1, 23, 59, 59, tzinfo=UTC)
    next_day = datetime(2026, 12, 2, 0, 0, 0, tzinfo=UTC)
    assert period_of("daily", late, created).start_day == "2026-12-01"
    assert period_of("daily", late, created).end_day == "2026-12-02"
    assert period_of("daily", next_day, created).start_day == "2026-12-02"
    assert period_of("monthly", late, created).start_day == "2026-12-01"
    assert period_of("monthly", late, created).end_day == "2027-01-01"
    total = period_of("total", late, created)
    assert (total.start_day, total.end_day) == ("2026-01-05", None)
    assert total.start == created


def test_usd_text_is_exact():
    assert usd_text(5 * USD + USD // 10) == "5.10"
    assert usd_text(123_000_000) == "0.000123"
    assert usd_text(0) == "0.00"
    assert usd_text(127_200_000) == "0.0001272"  # never rounded
    assert usd_text(1) == "0.000000000001"
    assert usd_text(-5 * USD) == "-5.00"


def test_the_message_has_slack_text_and_structured_fields_and_no_secret():
    alert = Alert(
        key_id="abcdefghij",
        project="search",
        threshold_percent=80,
        spent_picousd=8 * USD + USD // 2,
        budget_picousd=10 * USD,
        budget_period="daily",
        period_start=datetime(2026, 12, 2, tzinfo=UTC),
        instance_id="inst1",
        fired_at=datetime(2026, 12, 2, 10, 30, tzinfo=UTC),
    )
    body = message(alert)
    assert body["text"] == (
        "tollkeeper: key abcdefghij (project search) has spent $8.50 of its $10.00 daily"
        " budget (85%), crossing the 80% alert (period since 2026-12-02 UTC)"
    )
    assert {k: v for k, v in body.items() if k != "text"} == {
        "event": "budget_alert",
        "key_id": "abcdefghij",
        "project": "search",
        "threshold_percent": 80,
        "spent_usd": "8.50",
        "budget_usd": "10.00",
        "spent_percent": 85,
        "period": "daily",
        "period_start": "2026-12-02T00:00:00Z",
        "fired_at": "2026-12-02T10:30:00Z",
        "gateway_instance": "inst1",
    }
    assert "tk-" not in json.dumps(body)
