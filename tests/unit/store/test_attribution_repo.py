"""Usage by end user and by tag, from the raw records (both databases)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session

from addon.store import attribution_repo, usage_repo
from addon.store.models import UsageRecord

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def rec(**fields: Any) -> UsageRecord:
    base: dict[str, Any] = {
        "request_id": uuid.uuid4().hex,
        "created_at": T0,
        "provider": "openai",
        "project": "alpha",
        "model": "gpt-4o-mini",
        "input_tokens": 100,
        "output_tokens": 10,
        "cost_picousd": 1_000,
    }
    base.update(fields)
    return UsageRecord(**base)


def store(session: Session, *records: UsageRecord) -> None:
    usage_repo.insert_records(session=session, records=list(records))


def by(rows: list[dict[str, Any]], field: str) -> dict[Any, dict[str, Any]]:
    return {r[field]: r for r in rows}


def test_usage_by_user_sums_each_end_user_and_the_unattributed(session: Session) -> None:
    store(
        session,
        rec(end_user="alice", input_tokens=1, cost_picousd=5),
        rec(end_user="alice", input_tokens=2, cost_picousd=None),
        rec(end_user="bob@example.com", input_tokens=4),
        rec(input_tokens=8),
    )
    rows = by(attribution_repo.report(session=session, by="user"), "user")
    assert set(rows) == {"alice", "bob@example.com", None}
    alice = rows["alice"]
    assert (alice["requests"], alice["input_tokens"], alice["cost_picousd"]) == (2, 3, 5)
    assert (alice["unpriced_requests"], alice["priced_requests"]) == (1, 1)
    assert rows[None]["input_tokens"] == 8


def test_a_request_counts_fully_under_each_of_its_tags(session: Session) -> None:
    store(
        session,
        rec(tags="a,b", input_tokens=1, cost_picousd=10),
        rec(tags="b", input_tokens=2, cost_picousd=20),
        rec(tags="", input_tokens=4, cost_picousd=40),
    )
    rows = by(attribution_repo.report(session=session, by="tag"), "tag")
    assert set(rows) == {"a", "b", None}
    assert (rows["a"]["requests"], rows["a"]["input_tokens"], rows["a"]["cost_picousd"]) == (
        1,
        1,
        10,
    )
    assert (rows["b"]["requests"], rows["b"]["input_tokens"], rows["b"]["cost_picousd"]) == (
        2,
        3,
        30,
    )
    assert (rows[None]["requests"], rows[None]["cost_picousd"]) == (1, 40)


def test_tags_with_every_admitted_character_come_back_whole(session: Session) -> None:
    tag = "Feat.x_1:beta-2"
    store(session, rec(tags=f"{tag},z"))
    rows = by(attribution_repo.report(session=session, by="tag"), "tag")
    assert set(rows) == {tag, "z"}


def test_the_reports_keep_to_the_period_and_project(session: Session) -> None:
    store(
        session,
        rec(tags="t", end_user="u", created_at=T0 - timedelta(days=1)),
        rec(tags="t", end_user="u"),
        rec(tags="t", end_user="u", project="beta"),
        rec(tags="t", end_user="u", created_at=T0 + timedelta(days=1)),
    )
    for group in ("user", "tag"):
        rows = attribution_repo.report(
            session=session, by=group, since=T0, until=T0 + timedelta(hours=1), project="alpha"
        )
        assert [r["requests"] for r in rows] == [1]


def test_an_unknown_grouping_is_refused(session: Session) -> None:
    with pytest.raises(ValueError, match="cannot group by"):
        attribution_repo.report(session=session, by="nope")
