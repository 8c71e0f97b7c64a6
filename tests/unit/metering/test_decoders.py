"""Incremental content decoders used to meter compressed streams."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable

import brotli
import pytest
from backports import zstd
from hypothesis import given
from hypothesis import strategies as st

from addon.metering.decoders import MAX_PIECE_BYTES, IdentityDecoder, decode_bounded, decoder_for

PLAIN = b"".join(b'data: {"n": %d, "text": "h\xc3\xa9llo"}\n\n' % i for i in range(300))


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-15)
    return compressor.compress(data) + compressor.flush()


ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": zstd.compress,
}


def decode_in_pieces(encoding: str, data: bytes, cuts: list[int]) -> bytes:
    decoder = decoder_for(encoding)
    assert decoder is not None
    out = b""
    start = 0
    for cut in [*sorted({c for c in cuts if c <= len(data)}), len(data)]:
        out += b"".join(decoder.decode(data[start:cut]))
        start = cut
    return out


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
def test_byte_by_byte_decoding(encoding: str) -> None:
    compressed = ENCODERS[encoding](PLAIN)
    assert decode_in_pieces(encoding, compressed, list(range(len(compressed)))) == PLAIN


@given(
    encoding=st.sampled_from(sorted(ENCODERS)),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=30),
)
def test_any_chunking_decodes_to_the_same_bytes(encoding: str, cuts: list[int]) -> None:
    assert decode_in_pieces(encoding, ENCODERS[encoding](PLAIN), cuts) == PLAIN


def test_raw_deflate_is_detected_even_with_a_one_byte_first_chunk() -> None:
    compressed = raw_deflate(PLAIN)
    assert decode_in_pieces("deflate", compressed, [1, 2, 3]) == PLAIN


def test_gzip_decoder_also_takes_zlib_data() -> None:
    assert decode_in_pieces("gzip", zlib.compress(PLAIN), []) == PLAIN


def test_concatenated_zstd_frames() -> None:
    data = zstd.compress(PLAIN[:1000]) + zstd.compress(PLAIN[1000:])
    assert decode_in_pieces("zstd", data, [5, 900]) == PLAIN


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
def test_a_small_chunk_cannot_become_one_huge_piece(encoding: str) -> None:
    bomb = ENCODERS[encoding](b"\0" * (3 * MAX_PIECE_BYTES + 5))
    decoder = decoder_for(encoding)
    assert decoder is not None
    sizes = [len(piece) for piece in decoder.decode(bomb)]
    assert sum(sizes) == 3 * MAX_PIECE_BYTES + 5
    assert max(sizes) <= 2 * MAX_PIECE_BYTES  # brotli's output limit is soft


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
def test_corrupt_input_raises_value_error(encoding: str) -> None:
    decoder = decoder_for(encoding)
    assert decoder is not None
    garbage = b"\x1f\x8b\x08\x00" + b"\xff" * 64 if encoding == "gzip" else b"\xff" * 64
    with pytest.raises(ValueError):
        b"".join(decoder.decode(garbage))


@pytest.mark.parametrize("header", [None, "", "identity", " Identity "])
def test_identity(header: str | None) -> None:
    decoder = decoder_for(header)
    assert isinstance(decoder, IdentityDecoder)
    assert list(decoder.decode(b"abc")) == [b"abc"]
    assert list(decoder.decode(b"")) == []


def test_header_values_are_case_insensitive() -> None:
    assert decode_in_pieces("GZIP", gzip.compress(PLAIN), []) == PLAIN


@pytest.mark.parametrize("header", ["compress", "gzip, br", "sdch"])
def test_unsupported_encodings_have_no_decoder(header: str) -> None:
    assert decoder_for(header) is None


def test_decode_bounded_cuts_a_bomb_at_the_limit():
    bomb = gzip.compress(b"\0" * (64 << 20))  # ~64 KiB compressed
    body, over = decode_bounded(bomb, "gzip", 1 << 20)
    assert over and len(body) == 1 << 20


def test_decode_bounded_decodes_what_fits_and_passes_unknown_encodings():
    assert decode_bounded(gzip.compress(b"{}"), "gzip", 100) == (b"{}", False)
    assert decode_bounded(b"{}", None, 100) == (b"{}", False)
    assert decode_bounded(b"raw", "x-unknown", 100) == (b"raw", False)
    assert decode_bounded(b"not gzip", "gzip", 100) == (b"not gzip", False)
