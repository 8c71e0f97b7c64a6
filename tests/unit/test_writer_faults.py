"""The writer under faults: values no column holds, a hanging database, a full disk, and
records left behind by a process that died. Nothing may be lost, no reservation left."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fakes.db_relay import DbRelay
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, func, select

from addon import record_keeper as keeper_module
from addon.draft_codec import encode_draft
from addon.journal import Journal
from addon.metering.usage import MeterResult, Usage
from addon.pricing.table import PriceBook
from addon.records import UsageDraft, finish
from addon.spool import Spool
from addon.store.db import open_store
from addon.store.fit import TOKENS_MAX
from addon.store.models import InflightRequest, UsageRecord
from addon.store.usage_repo import insert_records
from addon.writer import UsageWriter

BOOK = PriceBook.bundled()
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keeper_module, "RETRY_EVERY_S", 0.05)


@pytest.fixture
def engine(migrated_db_url: str) -> Iterator[Engine]:
    e = open_store(migrated_db_url)
    yield e
    e.dispose()


class FullableSpool(Spool):
    """A real spool whose disk can be made full."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.full = False

    def append(self, records: Any) -> None:
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        super().append(records)


def draft(i: int, **changes: Any) -> UsageDraft:
    usage = changes.pop("usage", Usage(input_tokens=10, output_tokens=2))
    fields: dict[str, Any] = {
        "request_id": f"req-{i:05d}",
        "created_at": T0 + timedelta(seconds=i),
        "provider": "openai",
        "api": "openai.chat",
        "endpoint": "/v1/chat/completions",
        "virtual_key_id": "abc123xyz0",
        "project": "proj",
        "status_code": 200,
        "forwarded": True,
        "result": MeterResult(usage=usage, model=changes.pop("model", "gpt-4o-mini")),
    }
    fields.update(changes)
    return UsageDraft(**fields)


def finisher(d: object) -> Any:
    assert isinstance(d, UsageDraft)
    return finish(d, BOOK)


def ids(n: int, start: int = 0) -> list[str]:
    return [f"req-{i:05d}" for i in range(start, start + n)]


def rows(engine: Engine) -> dict[str, UsageRecord]:
    with Session(engine) as s:
        return {r.request_id: r for r in s.exec(select(UsageRecord))}


def inflight(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(InflightRequest)).one())


def reserve(engine: Engine, request_ids: list[str]) -> None:
    with Session(engine) as s:
        for rid in request_ids:
            s.add(
                InflightRequest(
                    request_id=rid,
                    virtual_key_id="abc123xyz0",
                    started_at=T0,
                    expires_at=T0 + timedelta(days=3650),
                    reserved_picousd=1000,
                )
            )
        s.commit()


def wait_for(cond: Callable[[], bool], timeout_s: float = 20.0) -> None:
    done = threading.Event()
    deadline = datetime.now(UTC) + timedelta(seconds=timeout_s)
    while not cond():
        if datetime.now(UTC) > deadline:
            raise AssertionError("condition not reached in time")
        done.wait(0.01)


# --- values the database cannot store --------------------------------------------------


def test_a_value_no_column_holds_costs_no_record_and_every_reservation_settles(
    engine: Engine, tmp_path: Path
) -> None:
    reserve(engine, ids(31))
    w = UsageWriter(engine, Spool(tmp_path / "spool.jsonl"), finisher)
    for i in range(31):  # one batch; before the fix SQLite's OverflowError lost all of it
        if i == 7:
            w.submit(draft(i, usage=Usage(input_tokens=2**70, output_tokens=3)))
        elif i == 9:  # pricing refuses a negative count: the record is a minimal one
            w.submit(draft(i, usage=Usage(input_tokens=5, output_tokens=-3)))
        elif i == 8:
            w.submit(draft(i, model="gpt-4o-mini\x00evil"))
        else:
            w.submit(draft(i))
    w.start()
    w.stop()
    stored = rows(engine)
    assert sorted(stored) == ids(31)
    big = stored["req-00007"]
    assert (big.input_tokens, big.output_tokens) == (TOKENS_MAX, 3)
    assert stored["req-00009"].output_tokens >= 0
    assert json.loads(big.extras_json)["clamped"]["input_tokens"] == str(2**70)
    assert stored["req-00008"].model == "gpt-4o-minievil"
    assert inflight(engine) == 0


def test_a_record_refused_whatever_its_values_gets_a_stand_in_and_stays_in_quarantine(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def picky(*, session: Session, records: Any) -> int:
        if any(r.request_id == "req-00003" and r.error_kind is None for r in records):
            raise OverflowError("simulated driver refusal")  # not a DBAPIError
        return insert_records(session=session, records=records)

    monkeypatch.setattr(keeper_module, "insert_records", picky)
    reserve(engine, ids(6))
    spool = Spool(tmp_path / "spool.jsonl")
    w = UsageWriter(engine, spool, finisher)
    for i in range(6):
        w.submit(draft(i))
    w.start()
    w.stop()
    stored = rows(engine)
    assert sorted(stored) == ids(6)
    assert stored["req-00003"].error_kind == "record_refused"
    assert stored["req-00003"].cost_picousd is None  # unknown: unpriced, never $0
    assert [r.request_id for r in Spool(spool.quarantine).read()] == ["req-00003"]
    assert inflight(engine) == 0


# --- a hanging database ------------------------------------------------------------------


def test_a_hanging_insert_spools_after_the_deadline_and_stop_does_not_wait_for_it(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()

    def hang(*, session: Session, records: Any) -> int:
        release.wait(60)
        raise OperationalError("INSERT", {}, Exception("server gone"))

    monkeypatch.setattr(keeper_module, "DB_DEADLINE_S", 0.2)
    spool = Spool(tmp_path / "spool.jsonl")
    with monkeypatch.context() as m:
        m.setattr(keeper_module, "insert_records", hang)
        w = UsageWriter(engine, spool, finisher)
        w.start()
        for i in range(10):
            w.submit(draft(i))
        wait_for(lambda: len(spool.read()) == 10)
        for i in range(10, 15):  # behind a hung call: spooled without waiting again
            w.submit(draft(i))
        w.stop(timeout_s=30)
        stopped = not w._thread.is_alive()
    release.set()
    assert stopped
    assert sorted(r.request_id for r in spool.read()) == ids(15)
    after = UsageWriter(engine, Spool(spool.path), finisher)
    after.start()
    after.stop()
    assert sorted(rows(engine)) == ids(15)


@pytest.fixture
def frozen_pg(postgres_url: str) -> Iterator[tuple[DbRelay, str]]:
    url = make_url(postgres_url)
    relay = DbRelay((url.host or "127.0.0.1", url.port or 5432))
    relay.up()
    try:
        yield relay, url.set(host="127.0.0.1", port=relay.port).render_as_string(False)
    finally:
        relay.down()


@pytest.mark.postgres
def test_a_frozen_postgresql_loses_nothing(
    frozen_pg: tuple[DbRelay, str], postgres_url: str, tmp_path: Path, monkeypatch
) -> None:
    relay, url = frozen_pg
    monkeypatch.setattr(keeper_module, "DB_DEADLINE_S", 1.0)
    engine = open_store(url)
    spool = Spool(tmp_path / "spool.jsonl")
    w = UsageWriter(engine, spool, finisher)
    w.start()
    try:
        w.submit(draft(0))
        wait_for(lambda: w.written == 1)
        relay.freeze()  # accepts, holds every byte, answers nothing
        for i in range(1, 9):
            w.submit(draft(i))
        wait_for(lambda: len(spool.read()) == 8)
        relay.thaw()
        wait_for(lambda: w.written == 9 and not spool.pending(), 60)
    finally:
        relay.thaw()
        w.stop()
        engine.dispose()
    direct = open_store(postgres_url)
    try:
        assert sorted(rows(direct)) == ids(9)
    finally:
        direct.dispose()


# --- neither database nor spool ----------------------------------------------------------


def test_when_no_record_can_be_kept_the_gate_closes_until_one_can(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_down = {"yes": True}

    def flaky(*, session: Session, records: Any) -> int:
        if db_down["yes"]:
            raise OperationalError("INSERT", {}, Exception("connection refused"))
        return insert_records(session=session, records=records)

    monkeypatch.setattr(keeper_module, "insert_records", flaky)
    spool = FullableSpool(tmp_path / "spool.jsonl")
    spool.full = True
    w = UsageWriter(engine, spool, finisher)
    w.start()
    try:
        assert w.accepting
        for i in range(5):
            w.submit(draft(i))
        wait_for(lambda: not w.accepting)
        spool.full = False  # the disk has room again (the database is still down)
        wait_for(lambda: w.accepting)
        assert sorted(r.request_id for r in spool.read()) == ids(5)
        spool.full = True
        w.submit(draft(5))
        wait_for(lambda: not w.accepting)
        db_down["yes"] = False  # now the database comes back first
        wait_for(lambda: w.accepting and w.written == 6)
    finally:
        w.stop()
    assert sorted(rows(engine)) == ids(6)


# --- the journal ---------------------------------------------------------------------------

DIE_WITH_JOURNAL = """
import os, signal, sys
from datetime import UTC, datetime
from pathlib import Path
from addon.draft_codec import encode_draft
from addon.journal import Journal
from addon.metering.usage import MeterResult, Usage
from addon.records import UsageDraft
j = Journal(Path(sys.argv[1]), encode_draft)
for i in range(int(sys.argv[2])):
    if i == 3:
        j.rotate()
    j.append(UsageDraft(request_id=f"req-{i:05d}", created_at=datetime(2026, 3, 1, tzinfo=UTC),
        provider="openai", api="openai.chat", endpoint="/v1/chat/completions",
        virtual_key_id="abc123xyz0", project="proj", status_code=200, forwarded=True,
        result=MeterResult(usage=Usage(input_tokens=7, output_tokens=1), model="gpt-4o-mini")))
os.write(j._fd, b'{"request_id": "torn", "prov')
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_journal_of_a_killed_process_is_written_at_the_next_start(
    engine: Engine, tmp_path: Path
) -> None:
    jdir = tmp_path / "journal"
    proc = subprocess.run(
        [sys.executable, "-c", DIE_WITH_JOURNAL, str(jdir), "6"], cwd=ROOT, timeout=60
    )
    assert proc.returncode == -9
    alive = Journal(jdir, lambda d: encode_draft(d))  # type: ignore[arg-type]
    alive.append(draft(99))  # a live process's journal is not touched
    with Session(engine) as s:  # written before the kill: not written twice
        insert_records(session=s, records=[finisher(draft(0))])
    reserve(engine, ids(5, start=1))
    spool = Spool(tmp_path / "spool.jsonl")
    w = UsageWriter(engine, spool, finisher, Journal(jdir, lambda d: encode_draft(d)))  # type: ignore[arg-type]
    w.start()
    w.stop()
    stored = rows(engine)
    assert sorted(stored) == ids(6)
    assert stored["req-00004"].input_tokens == 7
    assert inflight(engine) == 0
    assert "torn" in spool.quarantine.read_text()
    left = sorted(p.name for p in jdir.iterdir())
    assert left and all(name.startswith(alive.instance) for name in left)
    alive.close(keep=False)


def test_submit_journals_the_draft_before_the_writer_has_seen_it(
    engine: Engine, tmp_path: Path
) -> None:
    journal = Journal(tmp_path / "journal", lambda d: encode_draft(d))  # type: ignore[arg-type]
    w = UsageWriter(engine, Spool(tmp_path / "spool.jsonl"), finisher, journal)
    w.submit(draft(1))  # the writer thread is not even started
    text = "".join(p.read_text() for p in (tmp_path / "journal").glob("*.jsonl"))
    assert '"request_id":"req-00001"' in text
    w.start()
    w.stop()
    assert sorted(rows(engine)) == ids(1, start=1)
    assert list((tmp_path / "journal").iterdir()) == []  # a clean stop leaves nothing


def test_closed_segments_are_deleted_once_their_records_are_stored(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from addon import journal as journal_module

    monkeypatch.setattr(journal_module, "SEGMENT_BYTES", 2000)
    jdir = tmp_path / "journal"
    w = UsageWriter(
        engine,
        Spool(tmp_path / "spool.jsonl"),
        finisher,
        Journal(jdir, lambda d: encode_draft(d)),  # type: ignore[arg-type]
    )
    w.start()
    try:
        for i in range(200):
            w.submit(draft(i))
        wait_for(lambda: w.written == 200)
        wait_for(lambda: len(list(jdir.glob("*.jsonl"))) <= 2)  # the open one, maybe one more
    finally:
        w.stop()
    assert list(jdir.iterdir()) == []


def test_spools_of_stopped_processes_and_the_legacy_spool_are_taken_over(
    engine: Engine, tmp_path: Path
) -> None:
    jdir, sdir = tmp_path / "journal", tmp_path / "spool"
    live = Journal(jdir, lambda d: encode_draft(d))  # type: ignore[arg-type]
    Spool(sdir / f"{live.instance}.jsonl").append([finisher(draft(9))])  # its owner runs
    Spool(sdir / "1234-deadbeef.jsonl").append([finisher(draft(i)) for i in range(3)])
    legacy = tmp_path / "spool.jsonl"
    Spool(legacy).append([finisher(draft(i)) for i in range(2, 5)])  # one also above
    own = Journal(jdir, lambda d: encode_draft(d))  # type: ignore[arg-type]
    w = UsageWriter(engine, Spool(sdir / f"{own.instance}.jsonl"), finisher, own, legacy)
    w.start()
    w.stop()
    assert sorted(rows(engine)) == ids(5)
    assert not legacy.exists() and not (sdir / "1234-deadbeef.jsonl").exists()
    assert [r.request_id for r in Spool(sdir / f"{live.instance}.jsonl").read()] == ["req-00009"]
    live.close(keep=False)


def test_a_record_spooled_twice_is_written_once_and_never_quarantined(
    engine: Engine, tmp_path: Path
) -> None:
    spool = Spool(tmp_path / "spool.jsonl")
    spool.append([finisher(draft(i)) for i in range(3)])
    spool.append([finisher(draft(1))])  # from a journal replay and a spool takeover
    w = UsageWriter(engine, spool, finisher)
    w.start()
    w.stop()
    assert sorted(rows(engine)) == ids(3)
    assert not spool.quarantine.exists()


def test_a_draft_the_journal_cannot_take_is_still_written(engine: Engine, tmp_path: Path) -> None:
    def picky(d: object) -> str:
        assert isinstance(d, UsageDraft)
        if d.request_id == "req-00001":
            raise ValueError("cannot encode")
        return encode_draft(d)

    w = UsageWriter(
        engine, Spool(tmp_path / "spool.jsonl"), finisher, Journal(tmp_path / "j", picky)
    )
    for i in range(3):
        w.submit(draft(i))
    w.start()
    w.stop()
    assert sorted(rows(engine)) == ids(3)
