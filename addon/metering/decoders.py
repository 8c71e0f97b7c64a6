"""Incremental content decoders for metering a compressed stream.

Each decoder takes compressed chunks and yields decompressed pieces of about
``MAX_PIECE_BYTES`` at most (brotli may overshoot up to twice that), so a small compressed
chunk cannot blow up into one huge buffer.
Decoders raise ``ValueError`` on corrupt input.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any, Protocol

MAX_PIECE_BYTES = 1 << 20

try:
    import brotli as _brotli
except ImportError:  # pragma: no cover - brotli ships with mitmproxy
    _brotli = None

try:
    from compression import zstd as _zstd  # Python 3.14
except ImportError:
    try:
        from backports import zstd as _zstd  # ships with mitmproxy on Python < 3.14
    except ImportError:  # pragma: no cover
        _zstd = None


class Decoder(Protocol):
    def decode(self, chunk: bytes) -> Iterator[bytes]: ...


class IdentityDecoder:
    def decode(self, chunk: bytes) -> Iterator[bytes]:
        if chunk:
            yield chunk


class ZlibDecoder:
    """gzip, or HTTP ``deflate`` (zlib-wrapped, or raw deflate as some servers send)."""

    def __init__(self, encoding: str) -> None:
        self._gzip = encoding in ("gzip", "x-gzip")
        self._head = b""  # deflate: bytes seen before the zlib header can be checked
        self._obj: Any = zlib.decompressobj(wbits=47) if self._gzip else None

    def decode(self, chunk: bytes) -> Iterator[bytes]:
        if self._obj is None:
            self._head += chunk
            if len(self._head) < 2:
                return
            cmf, flg = self._head[0], self._head[1]
            zlib_wrapped = cmf & 0x0F == 8 and (cmf << 8 | flg) % 31 == 0
            self._obj = zlib.decompressobj(wbits=15 if zlib_wrapped else -15)
            chunk, self._head = self._head, b""
        try:
            piece = self._obj.decompress(chunk, MAX_PIECE_BYTES)
            while True:
                if piece:
                    yield piece
                if not self._obj.unconsumed_tail:
                    return
                piece = self._obj.decompress(self._obj.unconsumed_tail, MAX_PIECE_BYTES)
        except zlib.error as exc:
            raise ValueError(f"corrupt compressed stream: {exc}") from exc


class BrotliDecoder:
    def __init__(self) -> None:
        assert _brotli is not None
        self._obj: Any = _brotli.Decompressor()

    def decode(self, chunk: bytes) -> Iterator[bytes]:
        try:
            # The limit is soft (a piece may overshoot it), and can_accept_more_data() can be
            # True while output is still pending, so drain until a call yields nothing.
            piece = self._obj.process(chunk, output_buffer_limit=MAX_PIECE_BYTES)
            while piece:
                yield piece
                if self._obj.is_finished():
                    return
                piece = self._obj.process(b"", output_buffer_limit=MAX_PIECE_BYTES)
        except _brotli.error as exc:
            raise ValueError(f"corrupt brotli stream: {exc}") from exc


class ZstdDecoder:
    def __init__(self) -> None:
        assert _zstd is not None
        self._obj: Any = _zstd.ZstdDecompressor()

    def decode(self, chunk: bytes) -> Iterator[bytes]:
        try:
            while chunk or not (self._obj.needs_input or self._obj.eof):
                piece = self._obj.decompress(chunk, MAX_PIECE_BYTES)
                chunk = b""
                if self._obj.eof and self._obj.unused_data:  # a further frame follows
                    chunk = self._obj.unused_data
                    self._obj = _zstd.ZstdDecompressor()
                if piece:
                    yield piece
        except (_zstd.ZstdError, EOFError) as exc:
            raise ValueError(f"corrupt zstd stream: {exc}") from exc


def decoder_for(content_encoding: str | None) -> Decoder | None:
    """A decoder for a ``content-encoding`` header value, or None when we cannot decode it."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return IdentityDecoder()
    if encoding in ("gzip", "x-gzip", "deflate"):
        return ZlibDecoder(encoding)
    if encoding == "br" and _brotli is not None:
        return BrotliDecoder()
    if encoding == "zstd" and _zstd is not None:
        return ZstdDecoder()
    return None


def decode_bounded(raw: bytes, content_encoding: str | None, limit: int) -> tuple[bytes, bool]:
    """``raw`` decoded per ``content_encoding``, at most ``limit`` bytes of it, incrementally
    (a compression bomb never becomes one huge buffer); the flag says it was cut at the
    limit. An unknown or corrupt encoding gives the raw bytes back, like mitmproxy's
    ``get_content(strict=False)``."""
    decoder = decoder_for(content_encoding)
    if decoder is None or isinstance(decoder, IdentityDecoder):
        return raw[:limit], len(raw) > limit
    out = bytearray()
    try:
        for piece in decoder.decode(raw):
            room = limit - len(out)
            out += piece[:room]
            if len(piece) > room:
                return bytes(out), True
    except ValueError:
        return raw[:limit], len(raw) > limit
    return bytes(out), False
