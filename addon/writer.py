"""The background writer: the only place usage is written to the database.

Hooks hand it plain data with ``submit``: one journal line (``addon.journal``, so a hard
kill loses nothing) and a ``queue.put_nowait``; nothing waits. The thread batches records
into one transaction, fills in token estimates where the provider reported no usage
(tiktoken is CPU work, kept off the event loop), fits every value into its column
(``addon.store.fit``) and hands them to the ``RecordKeeper`` (database, else spool, else
memory with the gate closed). A draft that cannot be built still yields a minimal record.
``stop`` is bounded: it drains the queue, spools what the database does not take within
its deadline, and returns.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from addon import record_keeper
from addon.journal import Journal, SegmentClosed
from addon.pool import Health
from addon.record_keeper import RecordKeeper
from addon.records import UsageDraft, minimal_record
from addon.spool import Spool
from addon.store.fit import fit_row
from addon.store.models import UsageRecord
from addon.store.realkeys_repo import record_health
from addon.store.rows import UsageRow, as_dict
from addon.writer_replay import adopt_spools, replay_journals

log = logging.getLogger(__name__)

BATCH_MAX = record_keeper.BATCH_MAX
FLUSH_S = 0.25  # each batch has a fixed cost (id check, settle, commit): fewer, larger ones


@dataclass(frozen=True)
class HealthEvent:
    real_key_id: int
    health: Health


Finisher = Callable[[object], UsageRow]  # turns a draft into a record (estimates, cost)


class UsageWriter:
    def __init__(
        self,
        engine: Engine,
        spool: Spool,
        finish: Finisher,
        journal: Journal | None = None,
        legacy_spool: Path | None = None,
        flush_s: float = FLUSH_S,
    ) -> None:
        self._engine = engine
        self._spool = spool
        self._legacy_spool = legacy_spool
        self._finish = finish
        self._flush_s = flush_s
        self._journal = journal
        self.keeper = RecordKeeper(engine, spool)
        self._queue: queue.Queue[object] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="tollkeeper-writer", daemon=True)
        self._stopping = threading.Event()
        self._journal_warned = False

    @property
    def written(self) -> int:
        return self.keeper.written

    @property
    def accepting(self) -> bool:
        """False while records can be neither written nor spooled: stop forwarding."""
        return self.keeper.accepting

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        self._thread.start()

    def submit(self, item: object) -> None:
        """From the event loop: journal the draft, then queue it (never waits)."""
        journal = self._journal
        if journal is None or not isinstance(item, UsageDraft):
            self._queue.put_nowait(item)
            return
        try:
            journal.append(item)
        except Exception as e:  # noqa: BLE001 - the journal must never keep a draft from the queue
            self._journal_failed(e)
        self._queue.put_nowait(item)
        if journal.rotate_due():
            try:
                self._queue.put_nowait(journal.rotate())
            except OSError as e:
                self._journal_failed(e)

    def _journal_failed(self, e: Exception) -> None:
        if not self._journal_warned:
            self._journal_warned = True
            log.error("tollkeeper: usage journal unwritable (%s); a hard kill can lose records", e)

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stopping.set()
        self._thread.join(timeout=timeout_s)
        if self._thread.is_alive():
            log.error(
                "tollkeeper: usage writer still busy after %g s; the journal keeps the"
                " records for the next start",
                timeout_s,
            )

    def _run(self) -> None:
        """Every ``flush_s``, drain the queue and write it in batches.

        The thread sleeps on a timer, not on the queue: a ``put`` from the event loop
        never wakes it, so the loop does not hand the GIL over once per request.
        """
        if self._journal is not None:
            jdir = self._journal.dir
            self._guarded(partial(replay_journals, jdir, self))
            self._guarded(partial(adopt_spools, self._spool, jdir, self._legacy_spool, self))
        self._guarded(partial(self.keeper.retry_spool, force=True))
        while True:
            stopping = self._stopping.wait(self._flush_s)
            while batch := self._drain():
                self._guarded(partial(self._process, batch))
            self._guarded(partial(self.keeper.retry_spool, force=stopping))
            self._guarded(partial(self.keeper.recover, force=stopping))
            if stopping:
                self._close()
                return

    def _close(self) -> None:
        self.keeper.db.close()
        held = self.keeper.holding
        if held:
            log.error("tollkeeper: usage records unkept at shutdown stay in the journal")
        if self._journal is not None:
            self._journal.close(keep=held)

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

    # --- the replay sink (addon.writer_replay) ---------------------------------------------

    @property
    def holding(self) -> bool:
        return self.keeper.holding

    def process(self, items: Sequence[object]) -> None:
        """Write drafts (and health events, segment markers) in order."""
        self._process(list(items))

    def quarantine_lines(self, lines: Sequence[str]) -> None:
        self.keeper.quarantine_lines(lines)

    def write_records(self, records: Sequence[UsageRecord]) -> None:
        self.keeper.write([fit_row(UsageRow(**as_dict(r))) for r in records])

    # ---------------------------------------------------------------------------------------

    def _process(self, items: list[object]) -> None:
        records: list[UsageRow] = []
        for item in items:
            if isinstance(item, HealthEvent):
                self._write_health(item)
            elif isinstance(item, SegmentClosed):
                self.keeper.write(records)
                records = []
                self.keeper.segment_done(item.path)
            else:
                records.append(self._build(item))
        self.keeper.write(records)

    def _build(self, item: object) -> UsageRow:
        try:
            return fit_row(self._finish(item))
        except Exception:  # one bad draft must not stop the others, nor vanish
            log.exception("tollkeeper: could not build a usage record; writing a minimal one")
            return fit_row(minimal_record(item, "record_build_failed"))  # type: ignore[arg-type]

    def _write_health(self, event: HealthEvent) -> None:
        h = event.health

        def write() -> None:
            with Session(self._engine) as s:
                record_health(
                    session=s,
                    key_id=event.real_key_id,
                    status=h.status,
                    cooldown_until=h.cooldown_until,
                    auth_failures=h.auth_failures,
                    last_error=h.last_error,
                    observed_at=h.at,
                )

        try:
            self.keeper.db.call(write, record_keeper.DB_DEADLINE_S)
        except Exception as e:  # noqa: BLE001 - health is advisory; usage is what must not be lost
            log.warning("tollkeeper: could not persist real-key health (%s)", e)
