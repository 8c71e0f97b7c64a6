"""Incremental splitter for a streamed JSON array, as Gemini's ``streamGenerateContent`` sends
without ``?alt=sse``: ``[{...}\\n,\\r\\n{...}\\n]`` in arbitrary chunks.

Feed byte chunks; get back each top-level object once its closing brace has arrived, as an
:class:`~addon.metering.sse.SseEvent` whose ``data`` is the object's JSON text, so the stream
meter treats both framings alike. Braces and brackets are balanced outside JSON strings only,
with backslash escapes honoured, so ``"}"`` or ``"\\""`` inside a string do not end an object.
Scanning is on bytes (structural characters are ASCII, and no byte of a multi-byte UTF-8
character is), and an object is decoded only once complete, so chunks may split anywhere.

Between objects, whitespace, commas and the array's own brackets are separators. A bare object
(an error body that is not wrapped in an array) comes out the same way. Anything else there
(``data:`` prefixes, an HTML page) comes out as a run of junk ending before the next ``{``,
``[``, ``]`` or ``,``, whose ``data`` will not parse, so the meter counts it as a bad event.

As with :class:`~addon.metering.sse.SseSplitter`, every byte fed ends up in exactly one event's
``raw`` (separators go with the object after them, trailing ones into a final event with
``data=None``) or in :attr:`JsonArraySplitter.pending`.
"""

from __future__ import annotations

import re

from addon.metering.sse import BufferedSplitter, SseEvent

_VALUE_START = re.compile(rb"[^\s,\[\]]")  # outside an object: the first non-separator byte
_JUNK_END = re.compile(rb"[{\[\],]")
_STRUCTURE = re.compile(rb'[{}\[\]"]')  # inside an object, outside strings
_STRING_END = re.compile(rb'["\\]')  # inside a string
_OPEN_BRACE = 0x7B
_QUOTE = 0x22
_BACKSLASH = 0x5C
_OPENERS = frozenset(b"{[")


class JsonArraySplitter(BufferedSplitter):
    """Split a byte stream holding a JSON array of objects into its objects, incrementally."""

    def __init__(self) -> None:
        super().__init__()
        self._scan = 0  # offset in _buf from which to continue scanning
        self._value_start: int | None = None  # offset of the current object's (or junk's) start
        self._junk = False  # the current value is junk, not an object
        self._depth = 0  # open braces and brackets of the current object
        self._in_string = False

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """Add ``chunk``; return the events (objects) it completed, in order."""
        self._buf += chunk
        return self._split()

    def flush(self) -> list[SseEvent]:
        """End of stream: return the remaining events, including an unterminated tail
        (``complete=False``; its ``data`` is the unfinished value, or None for separators
        only). The splitter is empty afterwards."""
        events = self._split()
        if self._buf:
            data = self._value_text(len(self._buf)) if self._value_start is not None else None
            events.append(SseEvent(None, data, bytes(self._buf), complete=False))
        self._buf.clear()
        self._scan = 0
        self._value_start = None
        self._junk = self._in_string = False
        self._depth = 0
        return events

    def _split(self) -> list[SseEvent]:
        buf = self._buf
        events: list[SseEvent] = []
        event_start = 0
        scan = self._scan
        while scan < len(buf):
            if self._value_start is None:
                if (match := _VALUE_START.search(buf, scan)) is None:
                    scan = len(buf)
                    break
                self._value_start = match.start()
                self._junk = buf[match.start()] != _OPEN_BRACE
                self._depth = 0 if self._junk else 1
                scan = match.start() + 1
            elif self._junk:
                if (match := _JUNK_END.search(buf, scan)) is None:
                    scan = len(buf)
                    break
                scan = match.start()
                events.append(self._event(buf, event_start, scan))
                event_start = scan
            elif self._in_string:
                if (match := _STRING_END.search(buf, scan)) is None:
                    scan = len(buf)
                    break
                if buf[match.start()] == _BACKSLASH:
                    if match.start() + 1 == len(buf):  # the escaped byte has not arrived yet
                        scan = match.start()
                        break
                    scan = match.start() + 2
                else:
                    self._in_string = False
                    scan = match.start() + 1
            else:
                if (match := _STRUCTURE.search(buf, scan)) is None:
                    scan = len(buf)
                    break
                byte = buf[match.start()]
                scan = match.start() + 1
                if byte == _QUOTE:
                    self._in_string = True
                elif byte in _OPENERS:
                    self._depth += 1
                else:
                    self._depth -= 1
                    if self._depth == 0:
                        events.append(self._event(buf, event_start, scan))
                        event_start = scan
        if event_start:
            del buf[:event_start]
            if self._value_start is not None:
                self._value_start -= event_start
        self._scan = scan - event_start
        return events

    def _event(self, buf: bytearray, start: int, end: int) -> SseEvent:
        event = SseEvent(None, self._value_text(end), bytes(buf[start:end]))
        self._value_start = None
        self._junk = False
        self._depth = 0
        return event

    def _value_text(self, end: int) -> str:
        assert self._value_start is not None
        value = bytes(self._buf[self._value_start : end])
        return value.decode("utf-8", errors="replace").strip()
