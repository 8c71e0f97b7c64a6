"""At start: write the records of gateway processes that died (their journals).

A process killed hard leaves its journal segments behind; the drafts in them are written
like fresh ones (records already stored are skipped by ``request_id``), and lines that do
not parse go to the quarantine file. The files are deleted once every record is in the
database or the spool.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from addon.draft_codec import decode_draft
from addon.journal import orphans, read_lines
from addon.records import UsageDraft

log = logging.getLogger(__name__)


class Sink(Protocol):
    @property
    def holding(self) -> bool: ...

    def process(self, items: Sequence[object]) -> None: ...

    def quarantine_lines(self, lines: Sequence[str]) -> None: ...


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
