"""Drafts as journal lines: what comes back is what went in (estimate inputs only if needed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from addon.draft_codec import decode_draft, encode_draft
from addon.metering.usage import MeterResult, Usage
from addon.records import UsageDraft


def _draft(**changes: object) -> UsageDraft:
    d = UsageDraft(
        request_id="r1",
        created_at=datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC),
        provider="anthropic",
        api="anthropic.messages",
        endpoint="/v1/messages",
        virtual_key_id="abc",
        project="Projekt Ä",
        real_key_label="main",
        requested_model="claude-haiku-4-5",
        status_code=200,
        latency_ms=12,
        ttfb_ms=3,
        provider_request_id="req_1",
        forwarded=True,
        request_body=b'{"messages": []}',
        extras={"k": 1},
    )
    for name, value in changes.items():
        setattr(d, name, value)
    return d


def test_a_draft_with_usage_round_trips_without_its_body() -> None:
    usage = Usage(input_tokens=10, cached_input_tokens=4, output_tokens=3, reasoning_tokens=1)
    d = _draft(result=MeterResult(usage=usage, model="m", streamed=True, output_text="hi"))
    back = decode_draft(encode_draft(d))
    assert back.request_body is None  # not needed: the provider reported usage
    assert back.result is not None and back.result.output_text == ""
    d.request_body, d.result.output_text = None, ""  # type: ignore[union-attr]
    assert back == d


def test_a_draft_that_needs_an_estimate_keeps_body_and_streamed_text() -> None:
    d = _draft(aborted=True, result=MeterResult(streamed=True, output_text="partial answer"))
    assert decode_draft(encode_draft(d)) == d


def test_a_line_that_is_no_draft_raises() -> None:
    for line in ("[1]", '{"request_id": "x"}', "not json"):
        try:
            decode_draft(line)
        except (ValueError, TypeError, KeyError):
            continue
        raise AssertionError(line)


def test_end_user_and_tags_round_trip_and_old_lines_without_them_still_decode() -> None:
    d = _draft(end_user="alice", tags="a,b")
    assert decode_draft(encode_draft(d)) == d
    old = json.loads(encode_draft(_draft()))
    del old["end_user"], old["tags"]  # a journal line written before attribution existed
    back = decode_draft(json.dumps(old))
    assert (back.end_user, back.tags) == (None, "")
