"""The WireFormat object: what every format must say, and what it derives."""

from __future__ import annotations

import json

import pytest

from addon.errors import CATEGORIES, GatewayError, RateLimited
from addon.metering.estimate import count_tokens
from addon.metering.stream_events import OpenAIChatEvents
from addon.metering.usage import MeterResult
from addon.providers.wire_format import WireFormat


def body(err: GatewayError, error_type: str, headers: dict[str, str]) -> dict[str, object]:
    headers["x-extra"] = "1"
    return {"kind": error_type, "said": err.message}


def fmt(**changes: object) -> WireFormat:
    fields: dict[str, object] = {
        "prefix": "toy",
        "classify": lambda method, path: "toy.other",
        "parse_json": lambda api, raw: MeterResult(),
        "stream_events": lambda api, state: OpenAIChatEvents(state),
        "prompt_text": lambda api, doc: "hello world",
        "error_types": {c: c.upper() for c in CATEGORIES},
        "error_body": body,
        "token_apis": frozenset({"toy.chat"}),
        "media_apis": frozenset({"toy.image"}),
    }
    fields.update(changes)
    return WireFormat(**fields)  # type: ignore[arg-type]


def test_a_format_must_name_a_type_for_every_error_category() -> None:
    with pytest.raises(ValueError, match="no error type for rate_limit"):
        fmt(error_types={c: c for c in CATEGORIES - {"rate_limit"}})


def test_render_error_adds_the_gateway_headers_and_the_formats_own() -> None:
    status, raw, headers = fmt().render_error(RateLimited("wait", retry_after_s=4))
    assert status == 429
    assert json.loads(raw) == {"kind": "RATE_LIMIT", "said": "wait"}
    assert headers == {
        "content-type": "application/json",
        "x-tollkeeper-error": "rate_limited",
        "retry-after": "4",
        "x-extra": "1",
    }


def test_billable_apis_are_token_and_media_apis_and_owns_reads_the_prefix() -> None:
    toy = fmt()
    assert toy.billable_apis == {"toy.chat", "toy.image"}
    assert toy.owns("toy.chat") and not toy.owns("toyota.chat")


def test_prompt_tokens_default_to_the_counted_prompt_text() -> None:
    assert fmt().estimate_prompt_tokens("toy.chat", {}, "gpt-4o") == count_tokens(
        "hello world", "gpt-4o"
    )
    assert (
        fmt(prompt_tokens=lambda api, doc, model: 42).estimate_prompt_tokens("toy.chat", {}, None)
        == 42
    )
