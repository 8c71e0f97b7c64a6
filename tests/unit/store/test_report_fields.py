"""The report's fields: one list of measures for the rollups and both report paths, the split
of a period into whole and partial hours, and the stable shape of one group."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from addon.store import rollups
from addon.store.report_fields import (
    COUNT_FIELDS,
    MEASURE_NAMES,
    TAIL_FIELDS,
    hour_of,
    report_item,
    spans,
    total_item,
)

H = datetime(2026, 3, 1, 10, tzinfo=UTC)
MIN = timedelta(minutes=1)


def test_the_rollups_define_each_measure_in_this_order() -> None:
    assert tuple(m.name for m in rollups.MEASURES) == MEASURE_NAMES
    assert tuple(c.name for c in rollups.HOURLY.columns)[-len(MEASURE_NAMES) :] == MEASURE_NAMES


def test_a_report_shows_every_count_and_tail_field() -> None:
    assert set(COUNT_FIELDS) | set(TAIL_FIELDS) | {"cost_picousd", "priced_requests"} == set(
        MEASURE_NAMES
    )


def test_hour_of_is_the_utc_hour_whatever_the_zone() -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    assert hour_of((H + 59 * MIN).astimezone(india)) == H
    assert hour_of(datetime(2026, 3, 1, 10, 30)) == H  # naive is UTC


@pytest.mark.parametrize(
    ("since", "until", "whole", "partial"),
    [
        (None, None, (None, None), []),
        (H, H + 120 * MIN, (H, H + 120 * MIN), []),
        (H + 30 * MIN, None, (H + 60 * MIN, None), [(H + 30 * MIN, H + 60 * MIN)]),
        (None, H + 90 * MIN, (None, H + 60 * MIN), [(H + 60 * MIN, H + 90 * MIN)]),
        (H + 10 * MIN, H + 50 * MIN, None, [(H + 10 * MIN, H + 50 * MIN)]),  # inside one hour
        (
            H + 50 * MIN,
            H + 70 * MIN,
            None,
            [(H + 50 * MIN, H + 70 * MIN)],  # across one boundary: no whole hour
        ),
        (
            H + 50 * MIN,
            H + 130 * MIN,
            (H + 60 * MIN, H + 120 * MIN),
            [(H + 50 * MIN, H + 60 * MIN), (H + 120 * MIN, H + 130 * MIN)],
        ),
    ],
)
def test_a_period_is_whole_hours_and_at_most_two_partial_spans(
    since: datetime | None,
    until: datetime | None,
    whole: tuple[datetime | None, datetime | None] | None,
    partial: list[tuple[datetime, datetime]],
) -> None:
    assert spans(since, until) == (whole, partial)


def test_a_group_without_a_priced_request_has_no_cost() -> None:
    row = dict.fromkeys(MEASURE_NAMES, 0) | {"project": "p", "requests": 2}
    assert report_item(row | {"unpriced_requests": 2}, "project")["cost_usd"] is None
    priced = report_item(row | {"unpriced_requests": 1, "cost_picousd": 5 * 10**11}, "project")
    assert priced["cost_usd"] == "0.50"
    assert list(priced) == ["project", *COUNT_FIELDS, "cost_usd", *TAIL_FIELDS]


def test_a_total_sums_every_count_and_the_cost() -> None:
    rows = [
        dict.fromkeys(MEASURE_NAMES, 1) | {"project": "a", "requests": 5, "cost_picousd": 10**12},
        dict.fromkeys(MEASURE_NAMES, 2)
        | {"project": "b", "requests": 5, "cost_picousd": 5 * 10**11},
    ]
    total = total_item(rows, "project", "TOTAL")
    assert total["project"] == "TOTAL" and total["cost_usd"] == "1.50"
    assert all(total[f] == 3 for f in (*COUNT_FIELDS, *TAIL_FIELDS) if f != "requests")
    assert total["requests"] == 10
    everything_unpriced = [r | {"unpriced_requests": r["requests"]} for r in rows]
    assert total_item(everything_unpriced, "project", "TOTAL")["cost_usd"] is None
