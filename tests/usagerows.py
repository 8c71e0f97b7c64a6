"""Usage records for the rollup and report tests: one record with defaults, a strategy of
varied ones across a midnight, and the clearing and batch inserting of a store's records."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st
from sqlalchemy import delete
from sqlmodel import Session

from addon.store import rollups, usage_repo
from addon.store.models import UsageRecord

T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
SPAN_S = 8 * 3600  # random records fall in eight hours across a midnight
R0 = T0 - timedelta(hours=4)


def rec(**fields: Any) -> UsageRecord:
    base: dict[str, Any] = {
        "request_id": uuid.uuid4().hex,
        "created_at": T0,
        "provider": "openai",
        "project": "alpha",
        "virtual_key_id": "k1",
        "model": "m1",
        "input_tokens": 100,
        "output_tokens": 10,
        "cost_picousd": 1_000,
    }
    base.update(fields)
    return UsageRecord(**base)


records_st = st.builds(
    rec,
    created_at=st.integers(0, SPAN_S).map(lambda s: R0 + timedelta(seconds=s, microseconds=7)),
    virtual_key_id=st.sampled_from([None, "k1", "k2", ""]),
    project=st.sampled_from([None, "alpha", "beta", ""]),
    model=st.sampled_from([None, "m1", "m2"]),
    provider=st.sampled_from(["openai", "anthropic"]),
    input_tokens=st.integers(0, 10**8),
    cached_input_tokens=st.integers(0, 1000),
    cache_write_tokens=st.integers(0, 1000),
    output_tokens=st.integers(0, 10**6),
    reasoning_tokens=st.integers(0, 1000),
    cost_picousd=st.none() | st.integers(0, 10**16),
    estimated=st.booleans(),
    error_kind=st.sampled_from([None, "upstream_timeout"]),
)
moments = st.none() | st.integers(-3600, SPAN_S + 3600).map(lambda s: R0 + timedelta(seconds=s))


def clear(session: Session) -> None:
    session.execute(delete(UsageRecord.__table__))  # type: ignore[attr-defined]
    session.execute(delete(rollups.HOURLY))
    session.commit()


def insert(session: Session, records: list[UsageRecord], batch: int = 7) -> None:
    for i in range(0, len(records), batch):
        usage_repo.insert_records(session=session, records=records[i : i + batch])
