"""The incremental SSE splitter: separators, fields, raw bytes and arbitrary chunking."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from addon.metering.sse import SseEvent, SseSplitter


def split_all(stream: bytes, cuts: list[int] | None = None) -> list[SseEvent]:
    """Feed ``stream`` cut at ``cuts`` (default: byte by byte), then flush."""
    positions = sorted(set(cuts)) if cuts is not None else list(range(1, len(stream)))
    splitter = SseSplitter()
    events: list[SseEvent] = []
    start = 0
    for cut in [*positions, len(stream)]:
        events += splitter.feed(stream[start:cut])
        start = cut
    return events + splitter.flush()


def data_events(events: list[SseEvent]) -> list[tuple[str | None, str | None]]:
    return [(e.event, e.data) for e in events if e.data is not None or e.event is not None]


def test_lf_separated_events() -> None:
    events = SseSplitter().feed(b"data: one\n\ndata: two\n\n")
    assert [(e.data, e.raw) for e in events] == [
        ("one", b"data: one\n\n"),
        ("two", b"data: two\n\n"),
    ]


def test_crlf_separated_events() -> None:
    events = SseSplitter().feed(b'data: {"a":1}\r\n\r\ndata: {"b":2}\r\n\r\n')
    assert [(e.data, e.raw) for e in events] == [
        ('{"a":1}', b'data: {"a":1}\r\n\r\n'),
        ('{"b":2}', b'data: {"b":2}\r\n\r\n'),
    ]


def test_cr_separated_events() -> None:
    splitter = SseSplitter()
    events = splitter.feed(b"data: one\r\rdata: two\r\rx")
    assert [(e.data, e.raw) for e in events] == [
        ("one", b"data: one\r\r"),
        ("two", b"data: two\r\r"),
    ]
    assert splitter.pending == b"x"


def test_event_name_and_multi_line_data() -> None:
    (event,) = SseSplitter().feed(b"event: message_delta\ndata: line 1\ndata: line 2\n\n")
    assert (event.event, event.data) == ("message_delta", "line 1\nline 2")


def test_field_rules_without_space_without_colon_and_unknown_fields() -> None:
    (event,) = SseSplitter().feed(b"data:tight\ndata\nid: 7\nretry: 10\nfoo: bar\n\n")
    assert (event.event, event.data) == (None, "tight\n")


def test_only_one_leading_space_is_removed() -> None:
    (event,) = SseSplitter().feed(b"data:  two spaces\n\n")
    assert event.data == " two spaces"


def test_comment_lines_are_ignored_but_kept_in_raw() -> None:
    stream = b": OPENROUTER PROCESSING\n\n: keep-alive\ndata: x\n\n"
    events = SseSplitter().feed(stream)
    assert [(e.data, e.raw) for e in events] == [
        (None, b": OPENROUTER PROCESSING\n\n"),
        ("x", b": keep-alive\ndata: x\n\n"),
    ]


def test_blank_lines_come_out_as_empty_events_so_no_byte_is_lost() -> None:
    events = SseSplitter().feed(b"\n\ndata: x\n\n\n")
    assert [(e.data, e.raw) for e in events] == [
        (None, b"\n"),
        (None, b"\n"),
        ("x", b"data: x\n\n"),
        (None, b"\n"),
    ]


def test_incomplete_event_is_held_until_its_blank_line() -> None:
    splitter = SseSplitter()
    assert splitter.feed(b"data: par") == []
    assert splitter.feed(b"tial\n") == []
    assert splitter.pending == b"data: partial\n"
    (event,) = splitter.feed(b"\n")
    assert (event.data, event.raw) == ("partial", b"data: partial\n\n")
    assert splitter.pending == b""


def test_multi_byte_utf8_split_across_chunks() -> None:
    stream = "data: héllo 👋 日本\n\n".encode()
    (event,) = split_all(stream)
    assert event.data == "héllo 👋 日本"
    assert event.raw == stream


def test_cr_at_chunk_end_waits_for_a_possible_lf() -> None:
    splitter = SseSplitter()
    assert splitter.feed(b"data: a\r\n\r") == []  # the final "\r" may start "\r\n"
    (event,) = splitter.feed(b"\ndata: b\r\n")
    assert event.raw == b"data: a\r\n\r\n"
    assert splitter.pending == b"data: b\r\n"


def test_flush_returns_the_unterminated_tail() -> None:
    splitter = SseSplitter()
    assert splitter.feed(b"data: a\n\ndata: [DONE]") != []
    (tail,) = splitter.flush()
    assert (tail.data, tail.raw, tail.complete) == ("[DONE]", b"data: [DONE]", False)
    assert splitter.pending == b""
    assert splitter.flush() == []


def test_flush_takes_a_trailing_cr_as_line_end() -> None:
    splitter = SseSplitter()
    assert splitter.feed(b"data: a\r\r") == []
    (event,) = splitter.flush()
    assert (event.data, event.raw, event.complete) == ("a", b"data: a\r\r", True)


def test_invalid_utf8_is_replaced_not_raised() -> None:
    (event,) = SseSplitter().feed(b"data: \xff\xfe\n\n")
    assert event.data == "\ufffd\ufffd"


SSE_BYTES = st.lists(
    st.sampled_from(
        [b"\n", b"\r", b"\r\n", b"data: ", b"data:", b"event: e", b": c", b"x", b"{}",
         "é".encode(), "👋".encode(), b"\xe2"]
    ),
    max_size=40,
).map(b"".join)  # fmt: skip


@given(stream=SSE_BYTES, cuts=st.lists(st.integers(min_value=0, max_value=200)))
def test_events_do_not_depend_on_chunk_boundaries(stream: bytes, cuts: list[int]) -> None:
    assert split_all(stream, [c for c in cuts if c <= len(stream)]) == split_all(stream, [])


@given(stream=SSE_BYTES, cuts=st.lists(st.integers(min_value=0, max_value=200)))
def test_every_byte_is_in_exactly_one_event_or_pending(stream: bytes, cuts: list[int]) -> None:
    splitter = SseSplitter()
    seen = b""
    start = 0
    for cut in [*sorted({c for c in cuts if c <= len(stream)}), len(stream)]:
        seen += b"".join(e.raw for e in splitter.feed(stream[start:cut]))
        start = cut
        assert seen + splitter.pending == stream[:cut]
    assert seen + b"".join(e.raw for e in splitter.flush()) == stream
