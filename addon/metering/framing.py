"""How a stream's bytes are cut into events: Server-Sent Events, or a JSON array.

Every provider streams SSE (:func:`sse_framing`) except Gemini's ``streamGenerateContent``
without ``?alt=sse``, which sends a JSON array (``application/json``). With
:func:`negotiated_framing` the response's ``content-type`` decides; when it is missing or says
neither, the first non-blank byte does (``[`` or ``{``: JSON, anything else: SSE). Which
framing a wire format uses is said by the format (``addon/providers``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from addon.metering.json_array import JsonArraySplitter
from addon.metering.sse import SseEvent, SseSplitter


class Splitter(Protocol):
    @property
    def pending_size(self) -> int: ...

    def feed(self, chunk: bytes) -> list[SseEvent]: ...

    def flush(self) -> list[SseEvent]: ...


def sse_framing(content_type: str | None) -> Callable[[], Splitter]:
    """Server-Sent Events, whatever the ``content-type`` says."""
    return SseSplitter


def negotiated_framing(content_type: str | None) -> Callable[[], Splitter]:
    """SSE or a JSON array, as the response's ``content-type`` (or its first byte) says."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "text/event-stream":
        return SseSplitter
    if media == "application/json" or media.endswith("+json"):
        return JsonArraySplitter
    return SniffingSplitter


class SniffingSplitter:
    """Holds bytes back until the first non-blank one shows the framing, then delegates."""

    def __init__(self) -> None:
        self._head = bytearray()
        self._inner: Splitter | None = None

    @property
    def pending_size(self) -> int:
        return len(self._head) if self._inner is None else self._inner.pending_size

    def feed(self, chunk: bytes) -> list[SseEvent]:
        if self._inner is not None:
            return self._inner.feed(chunk)
        self._head += chunk
        first = bytes(self._head.lstrip()[:1])
        if not first:
            return []
        self._inner = JsonArraySplitter() if first in (b"[", b"{") else SseSplitter()
        head, self._head = bytes(self._head), bytearray()
        return self._inner.feed(head)

    def flush(self) -> list[SseEvent]:
        if self._inner is None:  # nothing but blank bytes arrived
            self._inner = SseSplitter()
            head, self._head = bytes(self._head), bytearray()
            events = self._inner.feed(head)
        else:
            events = []
        return events + self._inner.flush()
