"""Admission against a key's limits (addon/store/limits_repo.py), with the clock as a
parameter: each refusal kind, and the budget of every period counting the right days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from addon.limits import Limits
from addon.store.limits_repo import LimitExceeded, admit, release, settle
from addon.store.models import UsageRecord

NOW = datetime(2026, 3, 17, 10, 0, 30, tzinfo=UTC)
TTL = timedelta(minutes=15)


def limits(**given: object) -> Limits:
    fields: dict[str, object] = {
        "budget_picousd": None,
        "budget_period": "total",
        "rpm": None,
        "tpm": None,
        "max_parallel": None,
    }
    return Limits("key0000001", **{**fields, **given})  # type: ignore[arg-type]


_ids = iter(range(10**6))


def request(s: Session, key: Limits, now: datetime = NOW, tokens: int = 0) -> str:
    request_id = f"req-{next(_ids)}"
    admit(
        session=s,
        limits=key,
        request_id=request_id,
        now=now,
        reserve_picousd=0,
        reserve_tokens=tokens,
        ttl=TTL,
    )
    return request_id


def spent(s: Session, key: Limits, request_id: str, when: datetime, cost: int, tokens: int = 0):
    settle(s, [_record(key, request_id, when, cost, tokens)])
    s.commit()


def _record(key: Limits, request_id: str, when: datetime, cost: int, tokens: int) -> UsageRecord:
    return UsageRecord(
        request_id=request_id,
        created_at=when,
        virtual_key_id=key.key_id,
        provider="openai",
        input_tokens=tokens,
        output_tokens=0,
        cost_picousd=cost,
    )


def refusal(s: Session, key: Limits, now: datetime = NOW, tokens: int = 0) -> LimitExceeded:
    with pytest.raises(LimitExceeded) as refused:
        request(s, key, now, tokens)
    return refused.value


def test_parallel_requests_beyond_the_limit_are_refused_until_one_ends(session: Session) -> None:
    key = limits(max_parallel=2)
    first = request(session, key)
    request(session, key)
    refused = refusal(session, key)
    assert (refused.kind, refused.retry_after_s) == ("parallel", 1)
    release(session, first)
    request(session, key)


def test_requests_per_minute_are_refused_until_the_next_utc_minute(session: Session) -> None:
    key = limits(rpm=2)
    request(session, key)
    request(session, key)
    refused = refusal(session, key)
    assert (refused.kind, refused.retry_after_s) == ("rpm", 30)  # NOW is 30 s into its minute
    request(session, key, NOW + timedelta(seconds=30))


def test_tokens_per_minute_count_settled_and_reserved_tokens(session: Session) -> None:
    key = limits(tpm=100)
    done = request(session, key, tokens=10)
    spent(session, key, done, NOW, cost=0, tokens=90)
    assert refusal(session, key, tokens=20).kind == "tpm"
    request(session, key, NOW + timedelta(minutes=1), tokens=20)


def test_a_request_larger_than_the_tpm_still_runs_alone_in_an_empty_minute(
    session: Session,
) -> None:
    key = limits(tpm=100)
    request(session, key, tokens=500)
    assert refusal(session, key, tokens=1).kind == "tpm"


@pytest.mark.parametrize(
    ("period", "earlier", "counts"),
    [
        ("daily", NOW.replace(hour=0, minute=0, second=0), True),
        ("daily", NOW - timedelta(days=1), False),
        ("monthly", NOW.replace(day=1, hour=0, minute=0, second=0), True),
        ("monthly", NOW.replace(day=1, hour=0, minute=0, second=0) - timedelta(seconds=1), False),
        ("total", NOW - timedelta(days=400), True),
    ],
)
def test_the_budget_counts_the_spend_of_its_period_only(
    session: Session, period: str, earlier: datetime, counts: bool
) -> None:
    key = limits(budget_picousd=1000, budget_period=period)
    old = request(session, key, earlier)
    spent(session, key, old, earlier, cost=1000)
    if counts:
        refused = refusal(session, key)
        assert (refused.kind, refused.retry_after_s) == ("budget", None)
    else:
        request(session, key)


def test_reserved_spend_counts_against_the_budget_until_settled(session: Session) -> None:
    key = limits(budget_picousd=1000, budget_period="daily")
    paid = request(session, key)
    spent(session, key, paid, NOW, cost=500)
    average = request(session, key)  # reserves the day's average cost: 500
    assert refusal(session, key, NOW).kind == "budget"  # 500 spent + 500 reserved
    release(session, average)
    request(session, key)
