"""Counters stay bounded: per-minute rows and expired reservations are swept, so a day of
steady traffic (simulated with the clock as a parameter) leaves the tables' size flat."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from addon.limits import Limits
from addon.store.db import open_store
from addon.store.limits_repo import admit, settle, sweep
from addon.store.models import InflightRequest, KeyMinuteUsage, UsageRecord

START = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
KEYS = [Limits(f"key{i:07d}", None, "total", rpm=1000, tpm=None, max_parallel=50) for i in (1, 2)]


@pytest.fixture
def engine(migrated_db_url: str) -> Iterator[Engine]:
    e = open_store(migrated_db_url)
    yield e
    e.dispose()


def count(s: Session, table: type) -> int:
    return int(s.exec(select(func.count()).select_from(table)).one())


def traffic(s: Session, now: datetime, n: int) -> None:
    """Each key: one request admitted and settled, and every third one never settled (a
    killed stream), left to expire after its ttl."""
    for limits in KEYS:
        request_id = f"{limits.key_id}-{n}"
        admit(
            session=s,
            limits=limits,
            request_id=request_id,
            now=now,
            reserve_picousd=10,
            reserve_tokens=5,
            ttl=timedelta(minutes=15),
        )
        if n % 3:
            row = UsageRecord(
                request_id=request_id,
                created_at=now,
                virtual_key_id=limits.key_id,
                provider="openai",
                input_tokens=3,
                output_tokens=2,
                cost_picousd=7,
            )
            settle(s, [row])
            s.commit()


def test_a_day_of_steady_traffic_leaves_the_counters_flat(engine: Engine) -> None:
    sizes = []
    with Session(engine) as s:
        for n in range(24 * 6):  # a request per key every 10 simulated minutes
            now = START + timedelta(minutes=10 * n)
            traffic(s, now, n)
            sweep(s, now)
            sizes.append((count(s, KeyMinuteUsage), count(s, InflightRequest)))
    assert max(sizes) <= (len(KEYS), 2 * len(KEYS)), max(sizes)
    assert sizes[12:15] == sizes[-3:]  # the same after 2 hours as after 24


def test_sweep_keeps_the_recent_minutes_and_live_reservations(engine: Engine) -> None:
    with Session(engine) as s:
        traffic(s, START, 0)  # unsettled: in flight until START + 15 min
        traffic(s, START + timedelta(minutes=3), 1)
        swept = sweep(s, START + timedelta(minutes=8), keep_minutes=5)
        assert (swept.minute_rows, swept.expired_reservations) == (2, 0)
        assert count(s, KeyMinuteUsage) == 2 and count(s, InflightRequest) == 2
        swept = sweep(s, START + timedelta(minutes=15))
        assert swept.expired_reservations == 2 and count(s, InflightRequest) == 0
