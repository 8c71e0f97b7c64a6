"""The record keeper's spool and quarantine paths, driven directly (addon/record_keeper.py):
a spool replay that meets a record the database refuses, an unwritable quarantine file, and
a spool that cannot be read for now. The writer-level paths are in test_writer*.py."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from addon import record_keeper as keeper_module
from addon.record_keeper import RecordKeeper
from addon.spool import Spool
from addon.store.db import open_store
from addon.store.models import UsageRecord
from addon.store.usage_repo import insert_records

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
REFUSED = "req-1"


@pytest.fixture
def engine(migrated_db_url: str) -> Iterator[Engine]:
    e = open_store(migrated_db_url)
    yield e
    e.dispose()


@pytest.fixture
def picky(monkeypatch: pytest.MonkeyPatch) -> None:
    """The database refuses the full record ``REFUSED`` (never its stand-in)."""

    def insert(*, session: Session, records: Any) -> int:
        if any(r.request_id == REFUSED and r.error_kind is None for r in records):
            raise OverflowError("simulated driver refusal")
        return insert_records(session=session, records=records)

    monkeypatch.setattr(keeper_module, "insert_records", insert)


def record(i: int) -> UsageRecord:
    return UsageRecord(
        request_id=f"req-{i}",
        created_at=T0 + timedelta(seconds=i),
        provider="openai",
        endpoint="/v1/chat/completions",
        input_tokens=10,
        output_tokens=5,
        cost_picousd=100,
    )


def stored(engine: Engine) -> dict[str, UsageRecord]:
    with Session(engine) as s:
        return {r.request_id: r for r in s.exec(select(UsageRecord))}


def keeper(engine: Engine, spool: Spool) -> Iterator[RecordKeeper]:
    k = RecordKeeper(engine, spool)
    try:
        yield k
    finally:
        k.db.close()


@pytest.mark.usefixtures("picky")
def test_a_replay_that_meets_a_refused_record_stores_the_rest_and_quarantines_it(
    engine: Engine, tmp_path: Path
) -> None:
    spool = Spool(tmp_path / "spool.jsonl")
    spool.append([record(i) for i in range(3)])
    for k in keeper(engine, spool):
        k.retry_spool(force=True)
    rows = stored(engine)
    assert sorted(rows) == ["req-0", "req-1", "req-2"]
    assert rows[REFUSED].error_kind == "record_refused" and rows["req-0"].error_kind is None
    assert not spool.pending()
    assert [r.request_id for r in Spool(spool.quarantine).read()] == [REFUSED]


@pytest.mark.usefixtures("picky")
def test_an_unwritable_quarantine_still_stores_the_stand_in(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    quarantine = tmp_path / "rejected"
    quarantine.mkdir()  # a directory: appending to it fails
    spool = Spool(tmp_path / "spool.jsonl", quarantine)
    with caplog.at_level(logging.ERROR, logger=keeper_module.__name__):
        for k in keeper(engine, spool):
            k.write([record(i) for i in range(3)])
    assert stored(engine)[REFUSED].error_kind == "record_refused"
    assert sorted(stored(engine)) == ["req-0", "req-1", "req-2"]
    assert "quarantine file unwritable" in caplog.text
    assert not spool.pending()


class UnreadableSpool(Spool):
    """A spool whose first read fails (a disk hiccup), then reads as usual."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.failures = 1

    def read(self) -> list[UsageRecord]:
        if self.failures:
            self.failures -= 1
            raise OSError("simulated read error")
        return super().read()


def test_a_spool_unreadable_for_now_is_kept_and_replayed_later(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = UnreadableSpool(tmp_path / "spool.jsonl")
    spool.append([record(0), record(1)])
    for k in keeper(engine, spool):
        with caplog.at_level(logging.WARNING, logger=keeper_module.__name__):
            k.retry_spool(force=True)
        assert "spool unreadable for now" in caplog.text
        assert spool.pending() and stored(engine) == {}
        k.retry_spool(force=True)
    assert sorted(stored(engine)) == ["req-0", "req-1"] and not spool.pending()


def test_a_replay_is_not_due_again_before_the_retry_interval(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keeper_module, "RETRY_EVERY_S", 3600.0)
    spool = UnreadableSpool(tmp_path / "spool.jsonl")
    spool.append([record(0)])
    for k in keeper(engine, spool):
        k.retry_spool(force=True)  # fails to read: counts as a try
        k.retry_spool(force=False)  # not due for an hour: not even read
        assert spool.pending() and stored(engine) == {}
        k.retry_spool(force=True)
    assert sorted(stored(engine)) == ["req-0"]
