"""The incremental JSON-array splitter: objects, strings and escapes, separators, raw bytes."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from addon.metering.json_array import JsonArraySplitter
from addon.metering.sse import SseEvent


def split_all(stream: bytes, cuts: list[int] | None = None) -> list[SseEvent]:
    """Feed ``stream`` cut at ``cuts`` (default: byte by byte), then flush."""
    positions = sorted(set(cuts)) if cuts is not None else list(range(1, len(stream)))
    splitter = JsonArraySplitter()
    events: list[SseEvent] = []
    start = 0
    for cut in [*positions, len(stream)]:
        events += splitter.feed(stream[start:cut])
        start = cut
    return events + splitter.flush()


def objects(events: list[SseEvent]) -> list[Any]:
    return [json.loads(e.data) for e in events if e.data is not None]


def gemini_array(*items: Any) -> bytes:
    """The framing Gemini uses without alt=sse: ``[{...}\\n,\\r\\n{...}\\n]``."""
    return ("[" + "\n,\r\n".join(json.dumps(item, indent=2) for item in items) + "\n]").encode()


def test_objects_come_out_with_their_leading_separators_in_raw() -> None:
    splitter = JsonArraySplitter()
    events = splitter.feed(b'[{"a": 1}\n,\r\n{"b": [2, {"c": 3}]}\n]')
    assert [(e.data, e.raw) for e in events] == [
        ('{"a": 1}', b'[{"a": 1}'),
        ('{"b": [2, {"c": 3}]}', b'\n,\r\n{"b": [2, {"c": 3}]}'),
    ]
    assert splitter.pending == b"\n]"
    (tail,) = splitter.flush()
    assert (tail.data, tail.raw, tail.complete) == (None, b"\n]", False)
    assert splitter.pending == b""


def test_an_object_is_held_until_its_closing_brace() -> None:
    splitter = JsonArraySplitter()
    assert splitter.feed(b'[{"a": {"b": 1}') == []
    assert splitter.pending_size == len(b'[{"a": {"b": 1}')
    (event,) = splitter.feed(b"}, ")
    assert event.data == '{"a": {"b": 1}}'
    assert splitter.pending == b", "


def test_braces_brackets_and_quotes_inside_strings_do_not_count() -> None:
    tricky = {"text": 'a "}" b {[ ] \\ \\" c', "k}": "]", "u": "\u00e9\u4e2d\U0001f600"}
    stream = gemini_array(tricky, {"n": 1})
    assert objects(split_all(stream)) == [tricky, {"n": 1}]


def test_a_backslash_at_the_end_of_a_chunk_waits_for_the_escaped_byte() -> None:
    splitter = JsonArraySplitter()
    assert splitter.feed(b'[{"t": "x\\') == []
    assert splitter.feed(b'"') == []  # an escaped quote: the string goes on
    (event,) = splitter.feed(b'"}]')
    assert json.loads(event.data) == {"t": 'x"'}


def test_a_bare_object_is_an_event_too() -> None:
    error = {"error": {"code": 429, "message": "x", "status": "RESOURCE_EXHAUSTED"}}
    assert objects(split_all(json.dumps(error, indent=2).encode() + b"\n")) == [error]


def test_junk_between_objects_comes_out_as_unparseable_events() -> None:
    events = split_all(b'data: {"a": 1}\r\n\r\n<html>x</html>', cuts=[])
    assert [(e.data, e.complete) for e in events] == [
        ("data:", True),
        ('{"a": 1}', True),
        ("<html>x</html>", False),
    ]


def test_flush_returns_an_unfinished_object_as_an_incomplete_event() -> None:
    splitter = JsonArraySplitter()
    splitter.feed(b'[{"a": 1},\n{"b": "un')
    (tail,) = splitter.flush()
    assert (tail.data, tail.raw, tail.complete) == ('{"b": "un', b',\n{"b": "un', False)
    assert splitter.flush() == []
    (again,) = splitter.feed(b'{"c": 2}')  # reusable after a flush
    assert again.data == '{"c": 2}'


def test_invalid_utf8_is_replaced_not_raised() -> None:
    (event,) = JsonArraySplitter().feed(b'[{"t": "\xff"}')
    assert event.data == '{"t": "\ufffd"}'


def test_empty_and_separator_only_streams() -> None:
    assert split_all(b"") == []
    assert [(e.data, e.raw) for e in split_all(b"[\n]")] == [(None, b"[\n]")]


JSON_OBJECTS = st.lists(
    st.dictionaries(
        st.text(max_size=4),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(alphabet='{}[]"\\,: aé\n'),
            lambda children: (
                st.lists(children, max_size=3)
                | st.dictionaries(st.text(alphabet='{}"\\ab', max_size=3), children, max_size=3)
            ),
            max_leaves=8,
        ),
        max_size=4,
    ),
    max_size=5,
)


@given(items=JSON_OBJECTS, indent=st.sampled_from([None, 2]), cuts=st.lists(st.integers(0, 400)))
def test_objects_do_not_depend_on_chunk_boundaries(
    items: list[dict[str, Any]], indent: int | None, cuts: list[int]
) -> None:
    stream = ("[" + "\n,\r\n".join(json.dumps(i, indent=indent) for i in items) + "\n]").encode()
    whole = split_all(stream, cuts=[])
    assert split_all(stream, cuts) == whole
    assert objects(whole) == items
    assert b"".join(e.raw for e in whole) == stream


@given(stream=st.binary(max_size=200), cuts=st.lists(st.integers(0, 200)))
def test_every_byte_is_in_exactly_one_event_or_pending(stream: bytes, cuts: list[int]) -> None:
    splitter = JsonArraySplitter()
    seen = b""
    start = 0
    for cut in [*sorted(set(cuts)), len(stream)]:
        seen += b"".join(e.raw for e in splitter.feed(stream[start:cut]))
        start = max(start, cut)
        assert seen + splitter.pending == stream[:start]
    assert seen + b"".join(e.raw for e in splitter.flush()) == stream
    assert split_all(stream, cuts) == split_all(stream, cuts=[])
