"""Append-only local spool of usage records that could not be written to the database yet.

One JSON object per line. Replaying is idempotent because records carry a unique
``request_id``. A line that cannot be read back (torn by a crash, or foreign) is never
dropped: ``read`` copies it to the quarantine file first. Used only from the writer thread.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from addon.store.models import UsageRecord
from addon.store.rows import UsageRow, as_dict

_DATETIME_FIELDS = ("created_at",)


def _to_json(record: UsageRecord | UsageRow) -> str:
    data = as_dict(record)
    for f in _DATETIME_FIELDS:
        if isinstance(data.get(f), datetime):
            data[f] = data[f].isoformat()
    return json.dumps(data, sort_keys=True)


def _from_json(line: str) -> UsageRecord:
    data: dict[str, Any] = json.loads(line)
    for f in _DATETIME_FIELDS:
        if isinstance(data.get(f), str):
            data[f] = datetime.fromisoformat(data[f])
    return UsageRecord(**data)


def append_lines(path: Path, lines: Sequence[str]) -> None:
    """Append whole lines durably (fsync), all or nothing; OSError when the disk refuses."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data  # a crash cut the last line: start ours on a fresh one
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError:
            os.ftruncate(fd, size)  # no torn line, no half-kept batch
            raise
    finally:
        os.close(fd)


class Spool:
    def __init__(self, path: Path, quarantine: Path | None = None) -> None:
        self.path = path
        self.quarantine = quarantine or path.with_name("rejected.jsonl")

    def append(self, records: Sequence[UsageRecord | UsageRow]) -> None:
        append_lines(self.path, [_to_json(r) for r in records])

    def pending(self) -> bool:
        return self.size() > 0

    def size(self) -> int:
        """Bytes waiting; 0 when there is no file. One stat: the writer thread may remove the
        file at any moment, so checking that it exists first would race with it."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def read(self) -> list[UsageRecord]:
        """The records. Unreadable lines move to the quarantine file (OSError when that
        fails: the caller keeps the spool as it is)."""
        if not self.path.exists():
            return []
        out, good, unreadable = [], [], []
        with self.path.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    out.append(_from_json(line))
                    good.append(line)
                except (ValueError, TypeError, AttributeError):  # torn or foreign line
                    unreadable.append(line)
        if unreadable:
            append_lines(self.quarantine, unreadable)
            self._rewrite(good)  # so the next read does not quarantine them again
        return out

    def _rewrite(self, lines: list[str]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.unlink(missing_ok=True)
        append_lines(tmp, lines)
        os.replace(tmp, self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
