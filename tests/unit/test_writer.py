"""The background writer: batching, flushing on stop, and riding out a database outage."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, func, select

from addon import record_keeper as keeper_module
from addon import writer as writer_module
from addon.metering.usage import MeterResult, Usage
from addon.pool import Health
from addon.pricing.table import PriceBook
from addon.records import UsageDraft, finish
from addon.spool import Spool
from addon.store import realkeys_repo
from addon.store.db import open_store
from addon.store.models import RealKey, UsageRecord
from addon.store.usage_repo import insert_records
from addon.vault import Vault
from addon.writer import BATCH_MAX, HealthEvent, UsageWriter

BOOK = PriceBook.bundled()
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keeper_module, "RETRY_EVERY_S", 0.05)


@pytest.fixture
def engine(migrated_db_url: str) -> Iterator[Engine]:
    e = open_store(migrated_db_url)
    yield e
    e.dispose()


class SpySpool(Spool):
    """A real spool that also remembers which records went through it."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.spooled: list[str] = []
        self.reads = 0  # each replay of the spool reads it first

    def append(self, records: list[UsageRecord]) -> None:
        self.spooled += [r.request_id for r in records]
        super().append(records)

    def read(self) -> list[UsageRecord]:
        self.reads += 1
        return super().read()


@pytest.fixture
def spool(tmp_path: Path) -> SpySpool:
    return SpySpool(tmp_path / "spool.jsonl")


def draft(i: int, **changes: Any) -> UsageDraft:
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
        "result": MeterResult(usage=Usage(input_tokens=10, output_tokens=2), model="gpt-4o-mini"),
    }
    fields.update(changes)
    return UsageDraft(**fields)


def finisher(d: object) -> UsageRecord:
    assert isinstance(d, UsageDraft)
    return finish(d, BOOK)


def make_writer(engine: Engine, spool: Spool, fin: Callable[[object], UsageRecord] = finisher):
    return UsageWriter(engine, spool, fin)


def stored_ids(engine: Engine) -> list[str]:
    with Session(engine) as s:
        return sorted(s.exec(select(UsageRecord.request_id)))


def row_count(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(UsageRecord)).one())


def wait_for(cond: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def ids(n: int, start: int = 0) -> list[str]:
    return [f"req-{i:05d}" for i in range(start, start + n)]


# --- the normal path --------------------------------------------------------------------


def test_submitted_usage_is_written_with_its_cost(engine: Engine, spool: SpySpool) -> None:
    w = make_writer(engine, spool)
    w.start()
    for i in range(25):
        w.submit(draft(i))
    w.stop()
    assert stored_ids(engine) == ids(25)
    assert w.written == 25
    assert spool.spooled == [] and not spool.pending()
    with Session(engine) as s:
        row = s.exec(select(UsageRecord).where(UsageRecord.request_id == "req-00003")).one()
    # gpt-4o-mini: 10 * $0.15 + 2 * $0.60 per million tokens
    assert row.cost_picousd == 10 * 150_000 + 2 * 600_000
    assert (row.project, row.input_tokens, row.output_tokens) == ("proj", 10, 2)
    assert row.created_at == T0 + timedelta(seconds=3)


def test_queued_records_are_written_in_batches_of_one_transaction_each(
    engine: Engine, spool: SpySpool, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[int] = []

    def counting_insert(*, session: Session, records: list[UsageRecord]) -> int:
        batches.append(len(records))
        return insert_records(session=session, records=records)

    monkeypatch.setattr(keeper_module, "insert_records", counting_insert)
    w = make_writer(engine, spool)
    n = 2 * BATCH_MAX + 200
    for i in range(n):  # queued before the thread runs: the batches are full
        w.submit(draft(i))
    w.start()
    w.stop()
    assert batches == [BATCH_MAX, BATCH_MAX, 200]
    assert row_count(engine) == n


def test_records_are_committed_every_flush_interval_without_a_stop(
    engine: Engine, spool: SpySpool
) -> None:
    w = UsageWriter(engine, spool, finisher, flush_s=0.01)
    waits: list[float | None] = []
    event_wait = w._stopping.wait

    def wait(timeout: float | None = None) -> bool:
        waits.append(timeout)
        return event_wait(timeout)

    w._stopping.wait = wait  # type: ignore[method-assign]
    w.start()
    for i in range(3):
        w.submit(draft(i))
    wait_for(lambda: row_count(engine) == 3)
    w.stop()
    assert waits and set(waits) == {0.01}


def test_stop_flushes_everything_queued(engine: Engine, spool: SpySpool) -> None:
    w = make_writer(engine, spool)
    w.start()
    for i in range(1500):
        w.submit(draft(i))
    w.stop()  # immediately: nothing may be left behind
    assert row_count(engine) == 1500
    assert w.written == 1500


def test_a_draft_that_cannot_be_finished_still_yields_a_minimal_record(
    engine: Engine, spool: SpySpool
) -> None:
    def picky(d: object) -> UsageRecord:
        assert isinstance(d, UsageDraft)
        if d.request_id == "req-00002":
            raise RuntimeError("broken draft")
        return finisher(d)

    w = make_writer(engine, spool, picky)
    for i in range(5):
        w.submit(draft(i, status_code=201 if i == 2 else 200))
    w.start()
    w.stop()
    assert stored_ids(engine) == ids(5)
    with Session(engine) as s:
        row = s.exec(select(UsageRecord).where(UsageRecord.request_id == "req-00002")).one()
    assert (row.virtual_key_id, row.project, row.provider) == ("abc123xyz0", "proj", "openai")
    assert (row.status_code, row.error_kind) == (201, "record_build_failed")
    assert row.cost_picousd is None  # unknown, shown as unpriced, never $0


# --- database outages -------------------------------------------------------------------


def test_records_spool_while_inserts_fail_and_are_written_once_it_recovers(
    engine: Engine, spool: SpySpool, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}

    def flaky_insert(*, session: Session, records: list[UsageRecord]) -> int:
        calls["n"] += 1
        if calls["n"] <= 3:
            raise OperationalError("INSERT", {}, Exception("server closed the connection"))
        return insert_records(session=session, records=records)

    monkeypatch.setattr(keeper_module, "insert_records", flaky_insert)
    w = make_writer(engine, spool)
    w.start()
    for i in range(10):
        w.submit(draft(i))
    wait_for(lambda: w.written == 10 and not spool.pending())
    for i in range(10, 20):
        w.submit(draft(i))
    w.stop()
    assert calls["n"] > 3
    assert set(spool.spooled) == set(ids(10))  # the first ten went through the spool
    assert stored_ids(engine) == ids(20)  # none lost, none twice
    assert w.written == 20
    assert not spool.pending()


def test_a_real_database_failure_spools_and_replays(engine: Engine, spool: SpySpool) -> None:
    """The table disappears (as far as the writer can tell) and comes back."""
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE usage_records RENAME TO usage_records_away"))
    w = make_writer(engine, spool)
    w.start()
    try:
        for i in range(5):
            w.submit(draft(i))
        wait_for(lambda: len(spool.spooled) == 5)
        for i in range(5, 8):  # behind an outage, everything spools
            w.submit(draft(i))
        wait_for(lambda: len(spool.spooled) == 8)
        assert w.written == 0
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE usage_records_away RENAME TO usage_records"))
    wait_for(lambda: w.written == 8 and not spool.pending())
    w.submit(draft(8))
    w.stop()
    assert stored_ids(engine) == ids(9)
    assert w.written == 9


def test_records_spooled_before_a_restart_are_written_by_the_next_writer(
    engine: Engine, spool: SpySpool, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*, session: Session, records: list[UsageRecord]) -> int:
        raise OperationalError("INSERT", {}, Exception("connection refused"))

    with monkeypatch.context() as m:
        m.setattr(keeper_module, "insert_records", down)
        first = make_writer(engine, spool)
        first.start()
        for i in range(6):
            first.submit(draft(i))
        first.stop()  # shut down while the database is still away
    assert stored_ids(engine) == []
    assert [r.request_id for r in Spool(spool.path).read()] == ids(6)

    second = make_writer(engine, Spool(spool.path))
    second.start()
    second.stop()
    assert stored_ids(engine) == ids(6)
    assert not spool.pending()


def test_replaying_records_that_were_already_written_adds_no_duplicates(
    engine: Engine, spool: SpySpool
) -> None:
    """A crash between the commit of a replay and the removal of the spool."""
    records = [finisher(draft(i)) for i in range(4)]
    spool.append(records)
    with Session(engine) as s:
        insert_records(session=s, records=[finisher(draft(i)) for i in range(2)])
    w = make_writer(engine, spool)
    w.start()
    w.submit(draft(4))
    w.stop()
    assert stored_ids(engine) == ids(5)
    assert w.written == 3  # two from the spool, one new
    assert not spool.pending()


# --- real-key health --------------------------------------------------------------------


def test_health_events_are_persisted(engine: Engine, spool: SpySpool) -> None:
    with Session(engine) as s:
        row = realkeys_repo.add_real_key(
            session=s,
            vault=Vault(Fernet.generate_key()),
            provider="openai",
            label="main",
            secret="sk-proj-abcdefgh12345678",
            env_ref=None,
            base_url=None,
            actor="t",
        )
        key_id = row.id
    assert key_id is not None
    until = T0 + timedelta(minutes=5)
    w = make_writer(engine, spool)
    w.start()
    w.submit(HealthEvent(key_id, Health("cooling", until, 2, "upstream 401")))
    w.submit(HealthEvent(key_id + 1000, Health("disabled", None, 3, "upstream 401")))  # gone
    w.submit(draft(0))
    w.stop()
    with Session(engine) as s:
        stored = s.get(RealKey, key_id)
        assert stored is not None
        assert (stored.status, stored.cooldown_until) == ("cooling", until)
        assert (stored.consecutive_auth_failures, stored.last_error) == (2, "upstream 401")
    assert stored_ids(engine) == ids(1)


def test_a_health_event_that_cannot_be_written_does_not_block_usage(
    engine: Engine, spool: SpySpool, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**kwargs: object) -> None:
        raise OperationalError("UPDATE", {}, Exception("deadlock"))

    monkeypatch.setattr(writer_module, "record_health", broken)
    w = make_writer(engine, spool)
    w.start()
    w.submit(HealthEvent(1, Health("cooling", None, 1, "upstream 429")))
    w.submit(draft(0))
    w.stop()
    assert stored_ids(engine) == ids(1)


# --- PostgreSQL going away for real ------------------------------------------------------


class TcpRelay:
    """A loopback TCP relay in front of the database; ``down`` is an outage, ``up`` ends it."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def up(self) -> None:
        lst = socket.socket()
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lst.bind(("127.0.0.1", self.port))
        lst.listen(32)
        self.port = lst.getsockname()[1]
        self._listener = lst
        self._spawn(self._accept, lst)

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(t)
        t.start()

    def _accept(self, lst: socket.socket) -> None:
        while True:
            try:
                client, _ = lst.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._socks += [client, server]
            self._spawn(self._pump, client, server)
            self._spawn(self._pump, server, client)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def down(self) -> None:
        lst, self._listener = self._listener, None
        with self._lock:
            socks, self._socks = self._socks, []
            threads, self._threads = self._threads, []
        for s in [*([lst] if lst else []), *socks]:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        for t in threads:
            t.join(timeout=5)
        for s in [*([lst] if lst else []), *socks]:
            s.close()


@pytest.fixture
def relay(postgres_url: str) -> Iterator[tuple[TcpRelay, str]]:
    url = make_url(postgres_url)
    r = TcpRelay((url.host or "127.0.0.1", url.port or 5432))
    r.up()
    try:
        yield r, url.set(host="127.0.0.1", port=r.port).render_as_string(hide_password=False)
    finally:
        r.down()


def test_postgresql_outage_loses_nothing(
    relay: tuple[TcpRelay, str], postgres_url: str, tmp_path: Path
) -> None:
    r, relayed_url = relay
    engine = open_store(relayed_url)
    spool = SpySpool(tmp_path / "spool.jsonl")
    w = make_writer(engine, spool)
    w.start()
    try:
        for i in range(5):
            w.submit(draft(i))
        wait_for(lambda: w.written == 5)
        r.down()  # the database vanishes; pooled connections die with it
        for i in range(5, 12):
            w.submit(draft(i))
        wait_for(lambda: len(spool.spooled) == 7)
        replays = spool.reads
        wait_for(lambda: spool.reads >= replays + 2)  # several failed replays
        assert w.written == 5
        r.up()
        wait_for(lambda: w.written == 12 and not spool.pending())
        w.submit(draft(12))
    finally:
        w.stop()
        engine.dispose()
    direct = open_store(postgres_url)
    try:
        assert stored_ids(direct) == ids(13)
    finally:
        direct.dispose()


def test_a_record_postgresql_rejects_does_not_block_all_later_usage(
    postgres_url: str, tmp_path: Path
) -> None:
    engine = open_store(postgres_url)
    spool = SpySpool(tmp_path / "spool.jsonl")
    w = make_writer(engine, spool)
    w.start()
    try:
        w.submit(draft(0, provider_request_id="x" * 300))  # from an upstream's header
        w.submit(draft(1))
        wait_for(lambda: "req-00001" in stored_ids(engine))  # past the rejected record
        w.submit(draft(2))
    finally:
        w.stop()
    try:
        assert {"req-00001", "req-00002"} <= set(stored_ids(engine))
    finally:
        engine.dispose()
