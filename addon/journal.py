"""A per-process journal of usage drafts, so a hard kill loses no record.

The response hook hands its draft to the writer; before that, ``append`` writes it as one
line to an append-only file of this process instance. mitmproxy sends the end of the
response only after the ``response`` hook returned, so every response a client received
in full has its line in the kernel's page cache first. ``append`` is one ``os.write`` of a
few hundred bytes: no fsync, nothing that waits on the disk, fit for the event loop.

The journal is cut into segments. The event loop closes a segment (``rotate``) and queues
a marker behind the drafts written to it; when the writer thread reaches the marker,
every draft of the segment is in the database or in the (fsynced) spool, and the segment
is deleted. An instance holds an ``flock`` on its lock file while it lives: at start, the
segments of instances whose lock is free (they died) are replayed; replaying is
idempotent, records carry a unique ``request_id``.

What survives what: a crash of the process (SIGKILL, OOM kill, segfault) loses nothing,
the kernel still writes the page cache out. A crash of the machine (power, kernel panic)
can lose what the kernel had not written yet: the drafts that were not yet committed to
the database nor fsynced to the spool (about ``FLUSH_S`` plus one batch in normal
operation, up to the writer's database deadline while the database hangs).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

SEGMENT_BYTES = 1024 * 1024
SEGMENT_AGE_S = 2.0


@dataclass(frozen=True)
class SegmentClosed:
    """Queue marker: every draft of ``path`` was queued before this."""

    path: Path


class Journal:
    def __init__(self, directory: Path, encode: Callable[[object], str]) -> None:
        self.dir = directory
        self._encode = encode
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.instance = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._lock_path = directory / f"{self.instance}.lock"
        self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._seq = 0
        self._fd = -1
        self._path = directory / "none"
        self._size = 0
        self._opened_at = 0.0
        self._open_segment()

    def _open_segment(self) -> None:
        path = self.dir / f"{self.instance}.{self._seq + 1:08d}.jsonl"
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._seq, self._path = self._seq + 1, path
        self._size, self._opened_at = 0, time.monotonic()

    def append(self, item: object) -> None:
        """One line for ``item``; OSError when it could not be written (disk full)."""
        data = (self._encode(item) + "\n").encode("utf-8")
        written = os.write(self._fd, data)
        while written < len(data):  # short writes happen only near a full disk
            written += os.write(self._fd, data[written:])
        self._size += written

    def rotate_due(self) -> bool:
        age = time.monotonic() - self._opened_at
        return self._size >= SEGMENT_BYTES or (self._size > 0 and age >= SEGMENT_AGE_S)

    def rotate(self) -> SegmentClosed:
        """Start a new segment; the marker for the closed one goes behind its drafts."""
        closed = SegmentClosed(self._path)
        old = self._fd
        self._open_segment()
        os.close(old)
        return closed

    def close(self, *, keep: bool) -> None:
        """At a clean stop: delete this instance's segments, unless records are unsaved."""
        os.close(self._fd)
        if not keep:
            for path in self.dir.glob(f"{self.instance}.*.jsonl"):
                path.unlink(missing_ok=True)
            self._lock_path.unlink(missing_ok=True)
        os.close(self._lock_fd)


def orphans(directory: Path) -> Iterator[tuple[Path, list[Path]]]:
    """(lock file, segments) of every instance that died; its lock is held while yielded."""
    for lock in sorted(directory.glob("*.lock")):
        try:
            fd = os.open(lock, os.O_RDWR)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # alive
            instance = lock.name.removesuffix(".lock")
            yield lock, sorted(directory.glob(f"{instance}.*.jsonl"))
        finally:
            os.close(fd)


def alive(directory: Path, instance: str) -> bool:
    """Whether the instance that owns ``instance``'s files still runs (holds its lock)."""
    try:
        fd = os.open(directory / f"{instance}.lock", os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def read_lines(path: Path) -> Iterator[str]:
    with contextlib.suppress(FileNotFoundError), path.open("rb") as f:
        for raw in f:
            line = raw.decode("utf-8", errors="replace").strip()
            if line:
                yield line
