"""The background writer: the only place usage is written to the database.

Hooks hand it plain data with ``submit`` (``queue.put_nowait``, never blocks the event
loop). The thread batches records into one transaction, fills in token estimates where
the provider reported no usage (tiktoken is CPU work, kept off the event loop), and on a
database failure appends the batch to the local spool and retries until it is written.
``stop`` drains the queue before returning, so a clean shutdown loses nothing.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlmodel import Session

from addon.pool import Health
from addon.spool import Spool
from addon.store.db import describe_error
from addon.store.models import UsageRecord
from addon.store.realkeys_repo import record_health
from addon.store.rows import UsageRow
from addon.store.usage_repo import insert_records

log = logging.getLogger(__name__)


def _unreachable(e: DBAPIError) -> bool:
    """False only when the database refused the rows themselves (bad data, a constraint):
    retrying those would fail forever. Anything else (connection lost, server down, a
    table missing mid-migration) is retried later from the spool."""
    return not isinstance(e, DataError | IntegrityError)


BATCH_MAX = 500
FLUSH_S = 0.1
RETRY_EVERY_S = 2.0


@dataclass(frozen=True)
class HealthEvent:
    real_key_id: int
    health: Health


Finisher = Callable[[object], UsageRow]  # turns a draft into a record (estimates, cost)


class UsageWriter:
    def __init__(self, engine: Engine, spool: Spool, finish: Finisher) -> None:
        self._engine = engine
        self._spool = spool
        self._quarantine = Spool(spool.path.with_name("rejected.jsonl"))
        self._finish = finish
        self._queue: queue.Queue[object] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="tollkeeper-writer", daemon=True)
        self._stopping = threading.Event()
        self._last_retry = 0.0
        self.written = 0

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        self._thread.start()

    def submit(self, item: object) -> None:
        self._queue.put_nowait(item)

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stopping.set()
        self._thread.join(timeout=timeout_s)

    def _run(self) -> None:
        """Every FLUSH_S, drain the queue and write it in batches.

        The thread sleeps on a timer, not on the queue: a ``put`` from the event loop
        never wakes it, so the loop does not hand the GIL over once per request.
        """
        self._guarded(partial(self._retry_spool, force=True))
        while True:
            stopping = self._stopping.wait(FLUSH_S)
            while batch := self._drain():
                self._guarded(partial(self._process, batch))
            self._guarded(partial(self._retry_spool, force=stopping))
            if stopping:
                return

    @staticmethod
    def _guarded(step: Callable[[], None]) -> None:
        try:
            step()
        except Exception:  # the writer thread must never die
            log.exception("tollkeeper: usage writer step failed; carrying on")

    def _drain(self) -> list[object]:
        batch: list[object] = []
        while len(batch) < BATCH_MAX:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _process(self, items: list[object]) -> None:
        records: list[UsageRow] = []
        for item in items:
            if isinstance(item, HealthEvent):
                self._write_health(item)
                continue
            try:
                records.append(self._finish(item))
            except Exception:  # one bad draft must not stop the others
                log.exception("tollkeeper: could not build a usage record")
        if records:
            self._write(records)

    def _write(self, records: Sequence[UsageRow | UsageRecord]) -> None:
        if self._spool.pending():  # keep order simple: behind an outage, everything spools
            self._spool.append(records)
            return
        try:
            self._insert(records)
        except DBAPIError as e:
            if not _unreachable(e):
                self._insert_one_by_one(records)
                return
            log.warning(
                "tollkeeper: database unreachable (%s); spooling %d",
                describe_error(e),
                len(records),
            )
            self._spool.append(records)

    def _insert(self, records: Sequence[UsageRow | UsageRecord]) -> None:
        with Session(self._engine) as s:
            for i in range(0, len(records), BATCH_MAX):
                self.written += insert_records(session=s, records=records[i : i + BATCH_MAX])

    def _insert_one_by_one(self, records: Sequence[UsageRow | UsageRecord]) -> None:
        """The database refused a batch for its content: write every record it accepts,
        set the ones it refuses aside in the quarantine file (never silently dropped)."""
        for record in records:
            try:
                self._insert([record])
            except DBAPIError as e:
                if _unreachable(e):
                    self._spool.append([record])
                    continue
                log.error(
                    "tollkeeper: database refused usage record %s (%s); kept in %s",
                    record.request_id,
                    describe_error(e),
                    self._quarantine.path,
                )
                self._quarantine.append([record])

    def _retry_spool(self, *, force: bool) -> None:
        if not self._spool.pending():
            return
        now = time.monotonic()
        if not force and now - self._last_retry < RETRY_EVERY_S:
            return
        self._last_retry = now
        records = self._spool.read()
        try:
            self._insert(records)
        except DBAPIError as e:
            if _unreachable(e):
                log.warning("tollkeeper: spool replay failed (%s); will retry", describe_error(e))
                return
            self._spool.clear()
            self._insert_one_by_one(records)
            return
        self._spool.clear()
        log.warning("tollkeeper: replayed %d spooled usage records", len(records))

    def _write_health(self, event: HealthEvent) -> None:
        h = event.health
        try:
            with Session(self._engine) as s:
                record_health(
                    session=s,
                    key_id=event.real_key_id,
                    status=h.status,
                    cooldown_until=h.cooldown_until,
                    auth_failures=h.auth_failures,
                    last_error=h.last_error,
                )
        except Exception as e:  # noqa: BLE001 - health is advisory; usage is what must not be lost
            log.warning("tollkeeper: could not persist real-key health (%s)", e)
