"""Incremental Server-Sent Events splitter.

Feed arbitrary byte chunks; get back complete events. Lines end with ``\\n``, ``\\r\\n`` or
``\\r``; a blank line ends an event (so ``\\n\\n``, ``\\r\\n\\r\\n`` and ``\\r\\r`` all work).
Splitting happens on bytes, and an event is decoded only once it is complete, so chunks may
split anywhere, including inside a multi-byte UTF-8 character. A ``\\r`` at the very end of the
buffered bytes is not taken as a line end until the next byte shows whether a ``\\n`` follows,
which makes the result independent of where the chunks were split.

Every byte fed ends up in exactly one event's ``raw`` (blank lines and comment-only blocks come
out as events with ``data=None``) or in :attr:`SseSplitter.pending`, so a caller can drop one
event and forward all the others byte-for-byte.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE_END = re.compile(rb"[\r\n]")
_CR = 0x0D
_LF = 0x0A


@dataclass(frozen=True)
class SseEvent:
    event: str | None  # the ``event:`` field, None when absent
    data: str | None  # ``data:`` lines joined with "\n"; None when the event has no data field
    raw: bytes  # the exact bytes of this event, including its terminating blank line
    complete: bool = True  # False for an unterminated tail returned by ``flush``


def parse_event(lines: list[bytes], raw: bytes, *, complete: bool = True) -> SseEvent:
    """Build an event from its (undecoded) lines, following the WHATWG field rules."""
    event: str | None = None
    data: list[str] = []
    for line in lines:
        decoded = line.decode("utf-8", errors="replace")
        if decoded.startswith(":"):  # comment
            continue
        name, colon, value = decoded.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        name = name.lstrip("\ufeff")
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
    return SseEvent(event, "\n".join(data) if data else None, raw, complete)


class BufferedSplitter:
    """What every splitter has: the bytes of the current, incomplete event."""

    def __init__(self) -> None:
        self._buf = bytearray()  # starts at the first byte of the current (incomplete) event

    @property
    def pending(self) -> bytes:
        """Bytes fed but not yet part of a returned event."""
        return bytes(self._buf)

    @property
    def pending_size(self) -> int:
        return len(self._buf)


class SseSplitter(BufferedSplitter):
    """Split a byte stream into SSE events, incrementally."""

    def __init__(self) -> None:
        super().__init__()
        self._lines: list[bytes] = []  # complete lines of the current event
        self._line_start = 0  # offset in _buf of the current, unterminated line
        self._scan = 0  # offset in _buf from which to look for the next line end

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """Add ``chunk``; return the events it completed, in order."""
        self._buf += chunk
        return self._split(final=False)

    def flush(self) -> list[SseEvent]:
        """End of stream: return the remaining events, including an unterminated tail
        (``complete=False``) if any bytes are left. The splitter is empty afterwards."""
        events = self._split(final=True)
        if self._buf:
            if self._line_start < len(self._buf):
                self._lines.append(bytes(self._buf[self._line_start :]))
            events.append(parse_event(self._lines, bytes(self._buf), complete=False))
        self._buf.clear()
        self._lines = []
        self._line_start = self._scan = 0
        return events

    def _split(self, *, final: bool) -> list[SseEvent]:
        buf = self._buf
        events: list[SseEvent] = []
        event_start = 0
        line_start, scan = self._line_start, self._scan
        while (match := _LINE_END.search(buf, scan)) is not None:
            end_of_line = match.start()
            if buf[end_of_line] == _CR:
                if end_of_line + 1 == len(buf) and not final:
                    scan = end_of_line  # "\r" then maybe "\n": decide when more bytes arrive
                    break
                crlf = end_of_line + 1 < len(buf) and buf[end_of_line + 1] == _LF
                next_line = end_of_line + (2 if crlf else 1)
            else:
                next_line = end_of_line + 1
            if end_of_line == line_start:  # blank line: the event is complete
                events.append(parse_event(self._lines, bytes(buf[event_start:next_line])))
                self._lines = []
                event_start = next_line
            else:
                self._lines.append(bytes(buf[line_start:end_of_line]))
            line_start = scan = next_line
        else:
            scan = len(buf)
        if event_start:
            del buf[:event_start]
        self._line_start, self._scan = line_start - event_start, scan - event_start
        return events
