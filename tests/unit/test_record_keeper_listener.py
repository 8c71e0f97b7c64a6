"""The record keeper tells a listener about each committed batch; a failing listener
neither loses nor spools the records it was told about."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlmodel import Session

from addon.record_keeper import RecordKeeper
from addon.spool import Spool
from addon.store.db import open_store
from addon.store.models import UsageRecord
from addon.store.usage_repo import list_records


def record() -> UsageRecord:
    return UsageRecord(
        request_id=uuid.uuid4().hex,
        created_at=datetime(2026, 12, 1, tzinfo=UTC),
        provider="openai",
        virtual_key_id="key0000001",
        cost_picousd=5,
    )


def test_committed_batches_reach_the_listener_and_its_failure_loses_nothing(sqlite_url, tmp_path):
    engine = open_store(sqlite_url)
    spool = Spool(tmp_path / "spool.jsonl")
    keeper = RecordKeeper(engine, spool)
    told: list[list[str]] = []

    def listener(records):  # type: ignore[no-untyped-def]
        told.append([r.request_id for r in records])
        raise RuntimeError("listener broke")

    keeper.on_committed = listener
    batch = [record(), record()]
    keeper.write(batch)
    keeper.write([record()])
    assert told[0] == [r.request_id for r in batch] and len(told) == 2
    assert not spool.pending() and keeper.accepting
    with Session(engine) as s:
        assert len(list_records(session=s)) == 3
    keeper.db.close()
    engine.dispose()
