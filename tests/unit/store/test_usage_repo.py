"""Usage records in the database: idempotent inserts and grouped reports (both databases)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlmodel import Session

from addon.store import report_fields, usage_repo
from addon.store.models import UsageRecord

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def rec(**fields: Any) -> UsageRecord:
    base: dict[str, Any] = {
        "request_id": uuid.uuid4().hex,
        "created_at": T0,
        "provider": "openai",
        "project": "alpha",
        "virtual_key_id": "key0000001",
        "model": "gpt-4o-mini",
        "input_tokens": 100,
        "output_tokens": 10,
        "cost_picousd": 1_000,
    }
    base.update(fields)
    return UsageRecord(**base)


def by(rows: list[dict[str, Any]], field: str) -> dict[Any, dict[str, Any]]:
    return {r[field]: r for r in rows}


# --- inserts ----------------------------------------------------------------------------


def test_insert_returns_how_many_were_new(session: Session) -> None:
    assert usage_repo.insert_records(session=session, records=[]) == 0
    assert usage_repo.insert_records(session=session, records=[rec(request_id="a")]) == 1
    again = [rec(request_id="a"), rec(request_id="b")]
    assert usage_repo.insert_records(session=session, records=again) == 1
    stored = usage_repo.list_records(session=session)
    assert sorted(r.request_id for r in stored) == ["a", "b"]


def test_reinserting_a_request_id_keeps_the_first_record(session: Session) -> None:
    usage_repo.insert_records(session=session, records=[rec(request_id="a", input_tokens=1)])
    usage_repo.insert_records(session=session, records=[rec(request_id="a", input_tokens=999)])
    (only,) = usage_repo.list_records(session=session)
    assert only.input_tokens == 1


def test_list_records_is_newest_first_and_limited(session: Session) -> None:
    usage_repo.insert_records(session=session, records=[rec(request_id=f"r{i}") for i in range(5)])
    assert [r.request_id for r in usage_repo.list_records(session=session, limit=2)] == ["r4", "r3"]


def test_records_keep_utc_time_and_large_costs(session: Session) -> None:
    local = datetime(2026, 3, 1, 20, 30, tzinfo=timezone(timedelta(hours=-5)))
    big = 9_000_000_000_000_000  # $9,000 in picodollars: needs a 64-bit column
    usage_repo.insert_records(
        session=session, records=[rec(request_id="x", created_at=local, cost_picousd=big)]
    )
    session.expire_all()
    (row,) = usage_repo.list_records(session=session)
    assert row.created_at == local
    assert row.created_at.utcoffset() == timedelta(0)
    assert row.cost_picousd == big


# --- reports ----------------------------------------------------------------------------


@pytest.fixture
def mixed(session: Session) -> Session:
    usage_repo.insert_records(
        session=session,
        records=[
            rec(project="alpha", model="gpt-4o-mini", input_tokens=100, output_tokens=10,
                cached_input_tokens=40, reasoning_tokens=0, cost_picousd=1_000),
            rec(project="alpha", model="gpt-4o-mini", input_tokens=200, output_tokens=20,
                cost_picousd=2_000, estimated=True),
            rec(project="alpha", model="my-llama", provider="vllm", input_tokens=50,
                output_tokens=5, cost_picousd=None),
            rec(project="beta", virtual_key_id="key0000002", provider="anthropic",
                model="claude-haiku-4-5", input_tokens=300, output_tokens=30,
                cache_write_tokens=100, reasoning_tokens=7, cost_picousd=5_000,
                created_at=T0 + timedelta(days=1)),
            rec(project="beta", virtual_key_id="key0000002", provider="anthropic",
                model="claude-haiku-4-5", input_tokens=0, output_tokens=0, cost_picousd=0,
                status_code=401, error_kind="upstream_401", created_at=T0 + timedelta(days=1)),
            rec(project=None, virtual_key_id=None, model=None, input_tokens=0, output_tokens=0,
                cost_picousd=0, error_kind="invalid_key", created_at=T0 + timedelta(days=2)),
        ],
    )  # fmt: skip
    return session


def test_report_by_project(mixed: Session) -> None:
    rows = usage_repo.report(session=mixed, by="project")
    assert [r["project"] for r in rows].count(None) == 1
    groups = by(rows, "project")
    alpha = groups["alpha"]
    assert alpha["requests"] == 3
    assert (alpha["input_tokens"], alpha["output_tokens"]) == (350, 35)
    assert alpha["cached_input_tokens"] == 40
    assert alpha["cost_picousd"] == 3_000  # priced requests only
    assert alpha["priced_requests"] == 2
    assert alpha["unpriced_requests"] == 1
    assert (alpha["unpriced_input_tokens"], alpha["unpriced_output_tokens"]) == (50, 5)
    assert alpha["estimated_requests"] == 1
    assert alpha["error_requests"] == 0
    beta = groups["beta"]
    assert (beta["requests"], beta["cost_picousd"], beta["unpriced_requests"]) == (2, 5_000, 0)
    assert (beta["cache_write_tokens"], beta["reasoning_tokens"]) == (100, 7)
    assert beta["error_requests"] == 1
    assert groups[None]["error_requests"] == 1


def test_a_group_with_only_unpriced_usage_says_so(mixed: Session) -> None:
    groups = by(usage_repo.report(session=mixed, by="model"), "model")
    llama = groups["my-llama"]
    assert llama["requests"] == llama["unpriced_requests"] == 1
    assert llama["priced_requests"] == 0
    assert llama["unpriced_input_tokens"] == 50
    # a genuinely free request is priced, not unpriced
    assert groups[None]["unpriced_requests"] == 0 and groups[None]["priced_requests"] == 1


@pytest.mark.parametrize(
    ("group", "field", "expected"),
    [
        ("key", "key_id", {"key0000001": 3, "key0000002": 2, None: 1}),
        ("model", "model", {"gpt-4o-mini": 2, "my-llama": 1, "claude-haiku-4-5": 2, None: 1}),
        ("provider", "provider", {"openai": 3, "vllm": 1, "anthropic": 2}),
        ("day", "day", {"2026-03-01": 3, "2026-03-02": 2, "2026-03-03": 1}),
    ],
)
def test_report_groups(mixed: Session, group: str, field: str, expected: dict[Any, int]) -> None:
    rows = usage_repo.report(session=mixed, by=group)
    assert {r[field]: r["requests"] for r in rows} == expected
    assert all("grp" not in r for r in rows)


def test_report_by_provider_sums_cost(mixed: Session) -> None:
    groups = by(usage_repo.report(session=mixed, by="provider"), "provider")
    assert {p: g["cost_picousd"] for p, g in groups.items()} == {
        "openai": 3_000,
        "vllm": 0,
        "anthropic": 5_000,
    }
    assert groups["vllm"]["unpriced_requests"] == 1


def test_days_are_utc_days(session: Session) -> None:
    est = timezone(timedelta(hours=-5))
    usage_repo.insert_records(
        session=session,
        records=[
            rec(created_at=datetime(2026, 3, 1, 20, 30, tzinfo=est)),  # 01:30 UTC on the 2nd
            rec(created_at=datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC)),
            rec(created_at=datetime(2026, 3, 2, 0, 0, tzinfo=UTC)),
        ],
    )
    rows = usage_repo.report(session=session, by="day")
    assert {r["day"]: r["requests"] for r in rows} == {"2026-03-01": 1, "2026-03-02": 2}


def test_since_is_inclusive_and_until_exclusive(mixed: Session) -> None:
    day2 = T0 + timedelta(days=1)
    rows = usage_repo.report(session=mixed, by="day", since=day2)
    assert {r["day"] for r in rows} == {"2026-03-02", "2026-03-03"}
    rows = usage_repo.report(session=mixed, by="day", until=day2)
    assert {r["day"] for r in rows} == {"2026-03-01"}
    rows = usage_repo.report(session=mixed, by="day", since=day2, until=day2 + timedelta(days=1))
    assert {r["day"]: r["requests"] for r in rows} == {"2026-03-02": 2}


def test_since_and_until_in_another_zone_mean_the_same_instant(mixed: Session) -> None:
    plus2 = timezone(timedelta(hours=2))
    since = (T0 + timedelta(days=1)).astimezone(plus2)
    rows = usage_repo.report(session=mixed, by="day", since=since)
    assert {r["day"] for r in rows} == {"2026-03-02", "2026-03-03"}


def test_project_filter(mixed: Session) -> None:
    rows = usage_repo.report(session=mixed, by="model", project="beta")
    assert [(r["model"], r["requests"]) for r in rows] == [("claude-haiku-4-5", 2)]
    assert usage_repo.report(session=mixed, by="project", project="nobody") == []


def test_filters_combine(mixed: Session) -> None:
    rows = usage_repo.report(
        session=mixed, by="provider", project="alpha", since=T0, until=T0 + timedelta(hours=1)
    )
    assert {r["provider"]: r["requests"] for r in rows} == {"openai": 2, "vllm": 1}


def test_an_empty_database_reports_nothing(session: Session) -> None:
    for group in report_fields.GROUPS:
        assert usage_repo.report(session=session, by=group) == []


def test_an_unknown_grouping_is_refused(session: Session) -> None:
    with pytest.raises(ValueError, match="cannot group by"):
        usage_repo.report(session=session, by="colour")


def test_totals_are_exact_beyond_32_bits(session: Session) -> None:
    big = 3_000_000_000_000  # $3 in picodollars
    usage_repo.insert_records(
        session=session, records=[rec(cost_picousd=big), rec(cost_picousd=big + 1)]
    )
    (row,) = usage_repo.report(session=session, by="project")
    assert row["cost_picousd"] == 2 * big + 1
