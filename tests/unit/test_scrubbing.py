"""An echoed real key is removed from header values, bodies (compressed or not) and streams."""

from __future__ import annotations

import gzip
import zlib

import brotli
from hypothesis import given, settings
from hypothesis import strategies as st

from addon.metering.decoders import decoder_for
from addon.scrubbing import (
    MARK,
    BodyKeeper,
    CompressedBodyInspector,
    StreamScrubber,
    scrub_body,
    scrub_text,
)

SECRET = "sk-proj-REALscrubKEY000000000001"
CAP = 1 << 20


def test_header_text_is_scrubbed_and_short_secrets_are_ignored():
    assert scrub_text(f"https://x/?key={SECRET}", SECRET) == f"https://x/?key={MARK.decode()}"
    assert scrub_text("abc", "abc") == "abc"  # would match ordinary text


def test_plain_and_compressed_bodies_are_scrubbed():
    body = b'{"error": "bad key ' + SECRET.encode() + b'"}'
    plain = scrub_body(body, None, SECRET, CAP)
    assert plain.raw is not None and SECRET.encode() not in plain.raw and MARK in plain.raw
    for encoding, packed in (
        ("gzip", gzip.compress(body)),
        ("deflate", zlib.compress(body)),
        ("br", brotli.compress(body)),
    ):
        verdict = scrub_body(packed, encoding, SECRET, CAP)
        assert verdict.decoded is not None, encoding
        assert SECRET.encode() not in verdict.decoded and MARK in verdict.decoded


def test_a_clean_body_is_left_alone():
    assert scrub_body(gzip.compress(b"{}" * 1000), "gzip", SECRET, CAP) == scrub_body(
        b"", None, SECRET, CAP
    )


def test_a_key_past_the_cap_of_a_bomb_withholds_the_answer():
    bomb = gzip.compress(b"\0" * (4 * CAP) + SECRET.encode())
    assert scrub_body(bomb, "gzip", SECRET, CAP).refuse


def test_a_corrupt_compressed_body_is_checked_as_raw_bytes():
    verdict = scrub_body(b"not gzip " + SECRET.encode(), "gzip", SECRET, CAP)
    assert verdict.raw is not None and SECRET.encode() not in verdict.raw


def _run(scrubber: StreamScrubber, chunks: list[bytes]) -> bytes:
    out = b""
    for chunk in [*chunks, b""]:
        got = scrubber.feed(chunk)
        assert got != b"", "an empty bytes chunk would end an HTTP/1.1 body"
        out += got if isinstance(got, bytes) else b"".join(got)
    return out


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=60), st.binary(max_size=60), st.lists(st.integers(0, 200), max_size=8))
def test_a_stream_never_forwards_the_key_however_it_is_split(before, after, cuts):
    data = before + b"data: " + SECRET.encode() + b"\n\n" + after
    bounds = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *bounds], [*bounds, len(data)], strict=True)]
    out = _run(StreamScrubber(lambda c: c, SECRET), [c for c in chunks if c])
    assert SECRET.encode() not in out
    assert out == data.replace(SECRET.encode(), MARK)


def test_a_stream_only_holds_back_a_possible_start_of_the_key():
    scrubber = StreamScrubber(lambda c: c, SECRET)
    assert scrubber.feed(b"data: {}\n\n") == b"data: {}\n\n"  # an event goes out at once
    assert scrubber.feed(b"data: sk-pr") == b"data: "
    assert scrubber.feed(b"oj-no\n\n") == b"sk-proj-no\n\n"


def _decodable(raw: bytes) -> bytes:
    """What a client can decode from a (possibly cut) gzip stream."""
    return zlib.decompressobj(wbits=31).decompress(raw)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 400), max_size=10))
def test_a_clean_compressed_stream_goes_out_unchanged_however_it_is_split(cuts):
    packed = gzip.compress(b"".join(b'data: {"n": %d}\n\n' % i for i in range(40)))
    bounds = sorted({min(c, len(packed)) for c in cuts})
    pieces = [packed[a:b] for a, b in zip([0, *bounds], [*bounds, len(packed)], strict=True)]
    scrubber = StreamScrubber(lambda c: c, SECRET, decoder_for("gzip"))
    assert _run(scrubber, [p for p in pieces if p]) == packed
    assert not scrubber.found


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 60))
def test_a_compressed_stream_echoing_the_key_is_cut_before_the_key(step):
    plain = b"data: hello\n\n" * 30 + b"data: " + SECRET.encode() + b"\n\ndata: [DONE]\n\n"
    packer = zlib.compressobj(wbits=31)
    pieces = [
        packer.compress(plain[i : i + step]) + packer.flush(zlib.Z_SYNC_FLUSH)
        for i in range(0, len(plain), step)
    ] + [packer.flush()]
    scrubber = StreamScrubber(lambda c: c, SECRET, decoder_for("gzip"))
    out = _run(scrubber, [p for p in pieces if p])
    assert scrubber.found
    assert SECRET.encode()[:4] not in _decodable(out)[-64:]  # not even its start went out
    assert SECRET.encode() not in _decodable(out)


def test_a_compressed_bomb_stream_is_cut():
    bomb = gzip.compress(b"\0" * (8 * CAP))
    cut = StreamScrubber(lambda c: c, SECRET, decoder_for("gzip"), max_decoded=CAP)
    assert len(_run(cut, [bomb[i : i + 1000] for i in range(0, len(bomb), 1000)])) < len(bomb)


def _inspect(body: bytes, pieces: int = 7, cap: int = CAP) -> tuple[CompressedBodyInspector, bytes]:
    packed = gzip.compress(body)
    insp = CompressedBodyInspector(decoder_for("gzip"), SECRET, cap, gzip.compress)
    size = max(1, len(packed) // pieces)
    out = b""
    for i in range(0, len(packed), size):
        assert insp.feed(packed[i : i + size]) == []  # held back until the end
    end = insp.feed(b"")
    out = end if isinstance(end, bytes) else b"".join(end)
    return insp, out


def test_a_clean_compressed_answer_goes_out_unchanged_and_is_decoded_for_metering():
    insp, out = _inspect(b'{"usage": {}}' * 100)
    assert gzip.decompress(out) == b'{"usage": {}}' * 100 and not insp.found
    assert insp.decoded == b'{"usage": {}}' * 100


def test_a_compressed_answer_with_the_key_goes_out_scrubbed():
    insp, out = _inspect(b'{"error": "' + SECRET.encode() + b'"}')
    assert insp.found and gzip.decompress(out) == b'{"error": "' + MARK + b'"}'


def test_a_bomb_is_decoded_in_bounded_memory_and_forwarded_raw():
    bomb = b"\0" * (16 * CAP)
    insp, out = _inspect(bomb, pieces=50)
    assert insp.over_cap and len(insp.decoded) == CAP
    assert gzip.decompress(out) == bomb  # the raw bytes, unchanged


def test_a_key_past_the_cap_withholds_the_body():
    insp, out = _inspect(b"\0" * (4 * CAP) + SECRET.encode(), pieces=20)
    assert insp.found and insp.over_cap and out == b""


# --- a large plain buffered answer, scanned chunk by chunk ------------------------------


def _keep(body: bytes, chunk: int, hold: int, cap: int = CAP) -> tuple[BodyKeeper, bytes, int]:
    """(the keeper, what the client got, how many pieces went out before the end)."""
    keeper = BodyKeeper(cap, hold=hold)
    scrubber = StreamScrubber(keeper.feed, SECRET)
    out, early = [], 0
    for i in range(0, len(body), chunk):
        got = scrubber.feed(body[i : i + chunk])
        piece = got if isinstance(got, bytes) else b"".join(got)
        early += bool(piece)
        out.append(piece)
    end = scrubber.feed(b"")
    out.append(end if isinstance(end, bytes) else b"".join(end))
    return keeper, b"".join(out), early


@settings(max_examples=60, deadline=None)
@given(
    st.binary(max_size=3000),
    st.lists(st.integers(0, 3000), max_size=3),
    st.integers(1, 700),
    st.integers(0, 2000),
)
def test_a_kept_body_reaches_the_client_as_scrub_body_would_give_it(filler, at, chunk, hold):
    body = bytearray(filler)
    for pos in sorted(at, reverse=True):
        body[min(pos, len(body)) : min(pos, len(body))] = SECRET.encode()
    keeper, out, _ = _keep(bytes(body), chunk, hold)
    verdict = scrub_body(bytes(body), None, SECRET, CAP)
    assert out == (verdict.raw if verdict.raw is not None else bytes(body))
    assert keeper.decoded == bytes(body) and not keeper.over_cap and not keeper.found


def test_a_small_kept_body_goes_out_at_its_end_and_a_large_one_as_it_comes():
    body = b"x" * 5000
    assert _keep(body, 100, hold=10_000)[2] == 0
    assert _keep(body, 100, hold=1000)[2] > 30


def test_a_kept_body_over_the_cap_still_reaches_the_client_whole():
    body = b"y" * 5000 + SECRET.encode()
    keeper, out, _ = _keep(body, 512, hold=0, cap=1000)
    assert out == b"y" * 5000 + MARK and keeper.over_cap and keeper.decoded == b"y" * 1000
