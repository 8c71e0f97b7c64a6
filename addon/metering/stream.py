"""Meter a streamed (SSE, or Gemini's JSON array) response as it passes through.

A :class:`StreamMeter` is meant to be installed as mitmproxy's ``flow.response.stream``
callable: ``feed`` gets each raw chunk as it arrives and ``b""`` once at the end of the message,
and returns the bytes to send to the client. Normally that is the very chunk it got, unchanged
and immediately; parsing happens on a (decompressed) copy.

``feed`` never returns ``b""``: mitmproxy sends a returned ``bytes`` as one chunk, and an empty
one is a zero-length HTTP/1.1 chunk, which *ends the body* (the bytes after it then poison a
kept-alive connection). When there is nothing to send it returns an empty list, which mitmproxy
sends as nothing at all; several pieces go out as a list, one chunk each.

With ``strip_injected_usage=True`` (the gateway added ``stream_options.include_usage`` to an
OpenAI-style request whose client did not ask for it) the meter forwards whole SSE events only,
holding back an incomplete tail, and drops exactly the usage-only chunk (non-null ``usage`` and
``choices == []``); every other event goes out byte-for-byte. The gateway asks upstreams for
``identity``; should one compress such a stream anyway, the meter decodes it for the client
(:attr:`StreamMeter.decodes_for_client`: the caller removes ``content-encoding`` before the
headers leave), so the client still gets the upstream's bytes, decoded, minus that one chunk.

The caller gives the dialect: ``events`` makes the handler that meters each event
(``stream_events.py``), ``new_splitter`` cuts bytes into events (``framing.py``: SSE, or for
Gemini a JSON array split incrementally by brace balancing). The wire format of the api picks
both (``addon.providers.wire.stream_meter``).

``feed`` never raises: on an unexpected error it logs one warning, forwards what it holds plus
the chunk, and stops metering.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from addon.metering.decoders import IdentityDecoder, decoder_for
from addon.metering.framing import Splitter
from addon.metering.sse import SseEvent
from addon.metering.stream_events import EventHandler
from addon.metering.stream_state import StreamState
from addon.metering.usage import MeterResult

logger = logging.getLogger(__name__)

MAX_PENDING_BYTES = 16 << 20  # an event (or JSON-array element) larger than this is not parsed

Forward = bytes | list[bytes]  # what ``feed`` returns: one non-empty chunk, or several (maybe none)


def _forward(data: bytes) -> Forward:
    """``data`` as mitmproxy must get it: never as an empty ``bytes``."""
    return data if data else []


class StreamMeter:
    def __init__(
        self,
        api: str,
        *,
        events: Callable[[StreamState], EventHandler],
        new_splitter: Callable[[], Splitter],
        strip_injected_usage: bool = False,
        content_encoding: str | None = None,
    ) -> None:
        self.api = api
        self._state = StreamState()
        self._handler = events(self._state)
        self._new_splitter = new_splitter
        self._splitter = self._new_splitter()
        decoder = decoder_for(content_encoding)
        self._decoder = decoder
        self._metering = decoder is not None
        can_strip = strip_injected_usage and self._handler.can_strip
        self._strip = can_strip and decoder is not None
        self.decodes_for_client = self._strip and not isinstance(decoder, IdentityDecoder)
        self._held = bytearray()  # strip mode: (decoded) bytes received but not yet forwarded
        self._warned = False
        if decoder is None:
            self._state.extras["unmetered_encoding"] = content_encoding
        if can_strip and not self._strip:
            self._state.extras["usage_chunk_not_stripped"] = True
        if self.decodes_for_client:
            self._state.extras["decoded_for_client"] = content_encoding

    def feed(self, chunk: bytes) -> Forward:
        """Meter ``chunk`` (``b""`` = end of message); return the bytes to forward."""
        try:
            if self._strip:
                return self._feed_stripping(chunk)
            if self.decodes_for_client:  # stripping stopped; the client still needs plain bytes
                return self._decode_only(chunk)
            self._meter(chunk)
            return _forward(chunk)
        except Exception:  # a stream callable must never raise (mitmproxy drops the chunk)
            if not self._warned:
                self._warned = True
                logger.warning(
                    "metering a %s stream failed; passing it through", self.api, exc_info=True
                )
            return self._fail(chunk)

    @property
    def finished(self) -> bool:
        """The dialect's end-of-stream event has been metered (``[DONE]``, ``message_stop``,
        ``response.completed``…): the usage is final."""
        return self._state.finished

    def result(self) -> MeterResult:
        """What the stream has reported so far (``usage`` None when it reported none)."""
        return self._state.result()

    def _feed_stripping(self, chunk: bytes) -> Forward:
        kept: list[bytes] = []
        consumed = 0
        for event, usage_only in self._meter(chunk):
            consumed += len(event.raw)
            if not usage_only:
                kept.append(event.raw)
        if not self._metering:  # gave up (overflow or bad data): release everything held
            kept.append(bytes(self._held[consumed:]))
            consumed = len(self._held)
            self._strip = False
        if consumed:
            del self._held[:consumed]
        return _forward(b"".join(kept))

    def _meter(self, chunk: bytes) -> list[tuple[SseEvent, bool]]:
        """Parse ``chunk``; return the events it completed, each with "is usage-only"."""
        if not self._metering or self._decoder is None:
            return []
        handled: list[tuple[SseEvent, bool]] = []
        try:
            for piece in self._decoder.decode(chunk):
                if self._strip:
                    self._held += piece
                if not self._metering:  # stopped: only decoding what the client still needs
                    continue
                handled += self._handle_all(self._splitter.feed(piece))
                if self._splitter.pending_size > MAX_PENDING_BYTES:
                    self._stop("meter_overflow")
        except ValueError:  # corrupt compressed data
            self._stop("undecodable_stream")
            return handled
        if not chunk and self._metering:
            handled += self._handle_all(self._splitter.flush())
        return handled

    def _decode_only(self, chunk: bytes) -> Forward:
        assert self._decoder is not None
        try:
            return _forward(b"".join(self._decoder.decode(chunk)))
        except ValueError:  # corrupt: nothing more the client could read
            return []

    def _handle_all(self, events: list[SseEvent]) -> list[tuple[SseEvent, bool]]:
        return [(event, self._handle(event)) for event in events]

    def _handle(self, event: SseEvent) -> bool:
        # Events without data (blank lines, comments, pings) go to the handler too: in a Gemini
        # stream an error arrives as raw JSON lines, not as a data field.
        try:
            return self._handler.handle(event)
        except ValueError:  # a usage object of the wrong shape
            self._state.bad_events += 1
            return False

    def _stop(self, reason: str) -> None:
        self._metering = False
        self._state.extras[reason] = True
        self._splitter = self._new_splitter()

    def _fail(self, chunk: bytes) -> Forward:
        held = bytes(self._held) if self._strip or self.decodes_for_client else chunk
        self._held = bytearray()
        self._strip = False
        self._stop("meter_error")
        return _forward(held)
