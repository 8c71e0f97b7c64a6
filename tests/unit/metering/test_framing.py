"""Which splitter a stream gets: SSE, a JSON array, or a sniff of the first byte (Gemini)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from addon.metering.framing import SniffingSplitter, Splitter
from addon.metering.json_array import JsonArraySplitter
from addon.metering.sse import SseSplitter
from addon.providers.wire import wire_for


def splitter_for(api: str, content_type: str | None) -> Callable[[], Splitter]:
    """The framing the wire format of ``api`` picks for this content-type."""
    return wire_for(api).framing(content_type)


@pytest.mark.parametrize("content_type", [None, "application/json", "text/event-stream"])
@pytest.mark.parametrize("api", ["openai.chat", "openai.responses", "anthropic.messages"])
def test_other_providers_always_stream_sse(api: str, content_type: str | None) -> None:
    assert splitter_for(api, content_type) is SseSplitter


@pytest.mark.parametrize(
    ("content_type", "splitter"),
    [
        ("text/event-stream", SseSplitter),
        ("Text/Event-Stream; charset=utf-8", SseSplitter),
        ("application/json; charset=UTF-8", JsonArraySplitter),
        ("application/json", JsonArraySplitter),
        (None, SniffingSplitter),
        ("", SniffingSplitter),
        ("text/plain", SniffingSplitter),
    ],
)
def test_gemini_framing_follows_the_content_type(content_type: str | None, splitter: type) -> None:
    assert splitter_for("gemini.stream", content_type) is splitter


def test_sniffing_holds_blank_bytes_then_picks_a_json_array() -> None:
    splitter = SniffingSplitter()
    assert splitter.feed(b" \r\n") == []
    assert splitter.pending_size == 3
    (event,) = splitter.feed(b'[{"a": 1}\n')
    assert (event.data, event.raw) == ('{"a": 1}', b' \r\n[{"a": 1}')
    assert splitter.pending_size == 1
    assert [e.raw for e in splitter.flush()] == [b"\n"]


def test_sniffing_a_bare_object_is_json_too() -> None:
    events = SniffingSplitter().feed(b'{"error": {"status": "INTERNAL"}}')
    assert [e.data for e in events] == ['{"error": {"status": "INTERNAL"}}']


def test_sniffing_anything_else_is_sse() -> None:
    splitter = SniffingSplitter()
    (event,) = splitter.feed(b'data: {"a": 1}\r\n\r\n')
    assert event.data == '{"a": 1}'
    assert splitter.flush() == []


def test_sniffing_a_blank_stream_flushes_its_bytes() -> None:
    splitter = SniffingSplitter()
    splitter.feed(b"\n")
    assert [e.raw for e in splitter.flush()] == [b"\n"]
    assert SniffingSplitter().flush() == []
