"""At start: write the records of gateway processes that stopped (journals and spools).

A process killed hard leaves its journal segments behind; the drafts in them are written
like fresh ones (records already stored are skipped by ``request_id``), and lines that do
not parse go to the quarantine file. A process that stopped during a database outage
leaves its spool (each process has its own, so no two ever read and clear the same
file). The files are deleted once every record is in the database or this process's
spool. ``spool.jsonl`` in the home, from older versions, is taken over the same way.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from addon.draft_codec import decode_draft
from addon.journal import alive, orphans, read_lines
from addon.records import UsageDraft
from addon.spool import Spool
from addon.store.models import UsageRecord

log = logging.getLogger(__name__)

INSTANCE = re.compile(r"\d+-[0-9a-f]{8}")  # how addon.journal names a process instance


class Sink(Protocol):
    @property
    def holding(self) -> bool: ...

    def process(self, items: Sequence[object]) -> None: ...

    def quarantine_lines(self, lines: Sequence[str]) -> None: ...

    def write_records(self, records: Sequence[UsageRecord]) -> None: ...


def replay_journals(directory: Path, sink: Sink) -> None:
    for lock, segments in orphans(directory):
        drafts, unreadable = _read(segments)
        if unreadable:
            sink.quarantine_lines(unreadable)
        sink.process(drafts)
        if sink.holding:
            log.error("tollkeeper: journal %s kept: its records cannot be stored yet", lock.name)
            return
        for path in segments:
            path.unlink(missing_ok=True)
        lock.unlink(missing_ok=True)
        if drafts or unreadable:
            log.warning(
                "tollkeeper: recovered %d usage records from the journal of a stopped process"
                " (%d unreadable lines quarantined)",
                len(drafts),
                len(unreadable),
            )


def adopt_spools(own: Spool, journal_dir: Path, legacy: Path | None, sink: Sink) -> None:
    """Take over the spools of processes that no longer run."""
    others = [
        p
        for p in sorted(own.path.parent.glob("*.jsonl"))
        if p != own.path and INSTANCE.fullmatch(p.stem)
    ]
    orphaned = [p for p in others if not alive(journal_dir, p.stem)]
    for path in [*orphaned, *([legacy] if legacy else [])]:
        spool = Spool(path, own.quarantine)
        if not spool.pending():
            continue
        records = spool.read()
        sink.write_records(records)
        if sink.holding:
            return
        spool.clear()
        log.warning("tollkeeper: took over %d spooled usage records from %s", len(records), path)


def _read(segments: Sequence[Path]) -> tuple[list[UsageDraft], list[str]]:
    drafts: list[UsageDraft] = []
    unreadable: list[str] = []
    for path in segments:
        for line in read_lines(path):
            try:
                drafts.append(decode_draft(line))
            except (ValueError, TypeError, KeyError, AttributeError):
                unreadable.append(line)
    return drafts, unreadable
