"""Where a usage record goes, in order: the database, else the spool, else memory.

The database gets each write with a deadline (``DB_DEADLINE_S``, ``addon.deadline``): a
refusing, locked or frozen database all end in the spool, retried every ``RETRY_EVERY_S``
until written. When the spool cannot be written either (disk full, permissions), records
wait in memory and ``accepting`` turns False: the hooks stop forwarding provider
requests until a record can be kept again (as mitmproxy's ``save`` addon would rather
stop than let traffic pass unrecorded). A record the database refuses for its content is
written as a minimal stand-in (which settles its reservation) and kept in full in the
quarantine file. Used only from the writer thread, except ``accepting`` (a flag read).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError
from sqlmodel import Session

from addon.deadline import DeadlineExceeded, DeadlineRunner
from addon.records import UsageDraft, minimal_record
from addon.spool import Spool, append_lines
from addon.store.db import describe_error
from addon.store.fit import fit_row
from addon.store.models import UsageRecord
from addon.store.rows import UsageRow
from addon.store.usage_repo import insert_records

log = logging.getLogger(__name__)

BATCH_MAX = 500
RETRY_EVERY_S = 2.0
DB_DEADLINE_S = 5.0
HELD_MAX = 100_000  # records kept in memory while neither database nor spool takes them

Record = UsageRow | UsageRecord
Problem = tuple[str, str] | None  # ("unreachable" | "refused", why), None = written


def _classify(e: Exception) -> tuple[str, str]:
    """Refused (bad data, a constraint, a value the driver cannot convert): retrying would
    fail forever. Anything else (connection lost, server down, no answer, a table missing
    mid-migration) is retried later from the spool."""
    if isinstance(e, DeadlineExceeded):
        return "unreachable", str(e)
    if isinstance(e, DataError | IntegrityError):
        return "refused", describe_error(e)
    if isinstance(e, SQLAlchemyError):
        return "unreachable", describe_error(e)
    return "refused", f"{type(e).__name__}: {e}"


class RecordKeeper:
    def __init__(self, engine: Engine, spool: Spool) -> None:
        self._engine = engine
        self._spool = spool
        self.db = DeadlineRunner("tollkeeper-db")
        self._last_try: dict[str, float] = {}  # what was last retried when
        self._held: list[Record] = []
        self._closed_segments: list[Path] = []
        self.written = 0
        self.accepting = True
        self.not_accepting_why = ""
        # told about every batch once it is committed (budget alerts); must not wait on I/O
        self.on_committed: Callable[[Sequence[Record]], None] | None = None

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def segment_done(self, path: Path) -> None:
        """A journal segment whose records were all handed to ``write``."""
        if self._held:
            self._closed_segments.append(path)
        else:
            path.unlink(missing_ok=True)

    def write(self, records: Sequence[Record]) -> None:
        if not records:
            return
        if self._held or self._spool.pending():  # behind an outage, everything spools
            self._keep(records)
            return
        problem = self._try_insert(records)
        if problem is None:
            return
        kind, why = problem
        if kind == "refused":
            self._insert_one_by_one(records)
            return
        log.warning("tollkeeper: database unreachable (%s); spooling %d", why, len(records))
        self._keep(records)

    def _try_insert(self, records: Sequence[Record]) -> Problem:
        try:
            self.db.call(partial(self._insert, records), DB_DEADLINE_S)
        except Exception as e:  # noqa: BLE001 - classified: retried, spooled or set aside
            return _classify(e)
        return None

    def _insert(self, records: Sequence[Record]) -> None:
        records = _first_of_each(records)  # a journal and a spool may both hold one
        with Session(self._engine) as s:
            for i in range(0, len(records), BATCH_MAX):
                self.written += insert_records(session=s, records=records[i : i + BATCH_MAX])
        self._committed(records)

    def _committed(self, records: Sequence[Record]) -> None:
        if self.on_committed is None:
            return
        try:
            self.on_committed(records)
        except Exception:  # the records are written: a listener's fault must not spool them
            log.exception("tollkeeper: a listener of committed usage records failed")

    def _keep(self, records: Sequence[Record]) -> None:
        """Into the spool; else the database after all; else into memory, and stop the
        traffic until it can be kept."""
        try:
            self._spool.append(records)
        except OSError as e:
            if self._try_insert(records) is None:
                return
            room = max(0, HELD_MAX - len(self._held))
            self._held.extend(records[:room])
            if len(records) > room:
                log.error(
                    "tollkeeper: %d usage records LOST (memory hold full)", len(records) - room
                )
            self._close_gate(f"spool unwritable ({e})")

    def _insert_one_by_one(self, records: Sequence[Record]) -> None:
        """The database refused a batch for its content: write every record it accepts;
        for one it refuses, write a minimal stand-in (it settles the reservation) and keep
        the full record in the quarantine file."""
        for record in records:
            problem = self._try_insert([record])
            if problem is None:
                continue
            kind, why = problem
            if kind == "unreachable":
                self._keep([record])
                continue
            log.error(
                "tollkeeper: database refused usage record %s (%s); full record kept in %s",
                record.request_id,
                why,
                self._spool.quarantine,
            )
            self._quarantine([record])
            stand_in = _stand_in(record)
            if self._try_insert([stand_in]) is not None:
                self._keep([stand_in])

    def _quarantine(self, records: Sequence[Record]) -> None:
        try:
            Spool(self._spool.quarantine).append(records)
        except OSError as e:
            log.error("tollkeeper: quarantine file unwritable (%s)", e)

    def retry_spool(self, *, force: bool) -> None:
        if not self._spool.pending() or not self._due("spool", force):
            return
        try:
            records = self._spool.read()
        except OSError as e:
            log.warning("tollkeeper: spool unreadable for now (%s); will retry", e)
            return
        for i in range(0, len(records), BATCH_MAX):  # each chunk within the deadline
            problem = self._try_insert(records[i : i + BATCH_MAX])
            if problem is not None and problem[0] == "unreachable":
                log.warning("tollkeeper: spool replay failed (%s); will retry", problem[1])
                return
            if problem is not None:
                self._spool.clear()
                self._insert_one_by_one(records[i:])
                return
        self._spool.clear()
        log.warning("tollkeeper: replayed %d spooled usage records", len(records))

    def _due(self, what: str, force: bool) -> bool:
        now = time.monotonic()
        if not force and now - self._last_try.get(what, 0.0) < RETRY_EVERY_S:
            return False
        self._last_try[what] = now
        return True

    def recover(self, *, force: bool) -> None:
        """Records held in memory: to the spool, else the database, then open the gate."""
        if not self._held or not self._due("held", force):
            return
        held, self._held = self._held, []
        try:
            self._spool.append(held)
        except OSError:
            problem = self._try_insert(held)
            if problem is not None:
                self._held = held + self._held
                return
        for path in self._closed_segments:
            path.unlink(missing_ok=True)
        self._closed_segments = []
        self.accepting, self.not_accepting_why = True, ""
        log.warning("tollkeeper: READY again: usage can be recorded; forwarding resumes")

    def _close_gate(self, why: str) -> None:
        if self.accepting:
            log.error(
                "tollkeeper: NOT READY: usage can be neither written nor spooled (%s);"
                " provider requests get 503 until it can",
                why,
            )
        self.accepting, self.not_accepting_why = False, why

    def quarantine_lines(self, lines: Sequence[str]) -> None:
        append_lines(self._spool.quarantine, lines)


def _first_of_each(records: Sequence[Record]) -> list[Record]:
    seen: set[str] = set()
    out = []
    for r in records:
        if r.request_id not in seen:
            seen.add(r.request_id)
            out.append(r)
    return out


def _stand_in(record: Record) -> UsageRow:
    draft = UsageDraft(
        request_id=record.request_id,
        created_at=record.created_at,
        provider=record.provider,
        api="",
        endpoint=record.endpoint,
        virtual_key_id=record.virtual_key_id,
        project=record.project,
        real_key_label=record.real_key_label,
        status_code=record.status_code,
        end_user=record.end_user,
        tags=record.tags,
    )
    return fit_row(minimal_record(draft, "record_refused"))
