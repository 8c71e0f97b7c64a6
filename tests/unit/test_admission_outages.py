"""Admission of keys with limits when the database fails: a 503 with retry-after, on the
gateway's own executor, never a hang and never a stranded reservation."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from addon.admission import Admission, LimitsUnavailable
from addon.limits import Limits
from addon.pricing.table import PriceBook
from addon.providers.registry import PROVIDERS
from addon.store.db import make_engine, open_store
from addon.store.limits_repo import LimitExceeded
from addon.store.models import InflightRequest, KeyMinuteUsage

LIMITS = Limits("key0000001", None, "total", rpm=None, tpm=None, max_parallel=1)
BODY = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}'


def request(request_id: str) -> dict[str, object]:
    return {
        "prices": PriceBook.bundled(),
        "limits": LIMITS,
        "request_id": request_id,
        "provider": "openai",
        "api": "openai.chat",
        "model": "gpt-4o-mini",
        "raw_body": BODY,
        "ttl": timedelta(minutes=5),
    }


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    e = open_store(sqlite_url)
    yield e
    e.dispose()


def inflight(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(InflightRequest)).one())


def test_admits_on_its_own_threads_and_records_the_instance(engine: Engine) -> None:
    admission = Admission(engine, instance_id="inst1")

    async def go() -> None:
        await admission.admit(**request("r1"))
        with pytest.raises(LimitExceeded):  # max_parallel 1
            await admission.admit(**request("r2"))

    asyncio.run(go())
    with Session(engine) as s:
        (row,) = s.exec(select(InflightRequest)).all()
    assert (row.request_id, row.instance_id) == ("r1", "inst1")
    admission.stop()


def test_an_unreachable_database_answers_503_with_retry_after() -> None:
    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none")
    admission = Admission(engine, instance_id="inst1", retry_after_s=3)
    with pytest.raises(LimitsUnavailable) as exc:
        asyncio.run(admission.admit(**request("r1")))
    status, _, headers = PROVIDERS["openai"].render_error(exc.value)
    assert status == 503 and headers["retry-after"] == "3"
    assert headers["x-tollkeeper-error"] == "limits_unavailable"
    admission.stop()
    engine.dispose()


def test_a_hanging_database_answers_503_in_time_and_the_late_reservation_is_released(
    engine: Engine, tmp_path: Path
) -> None:
    blocker = sqlite3.connect(tmp_path / "tollkeeper.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # holds the write lock: admissions wait on it
    admission = Admission(engine, instance_id="inst1", timeout_s=0.3)
    try:
        with pytest.raises(LimitsUnavailable):
            asyncio.run(admission.admit(**request("late")))
    finally:
        blocker.execute("COMMIT")  # the waiting admission now goes through...
        blocker.close()
    deadline = time.monotonic() + 10
    while inflight(engine) or not admission_done(engine):
        assert time.monotonic() < deadline, "the late reservation was not released"
        time.sleep(0.02)
    admission.stop()


def admission_done(engine: Engine) -> bool:
    """The late admission committed (its minute counter exists) and nothing is in flight."""
    with Session(engine) as s:
        minutes = s.exec(select(func.count()).select_from(KeyMinuteUsage)).one()
    return bool(minutes)
