"""Provider usage objects → the normalised :class:`~addon.metering.usage.Usage`.

The convention (see ``usage.py``): ``input_tokens`` includes cache reads and writes,
``output_tokens`` includes reasoning. OpenAI-style and Gemini counts already include cache reads
(``prompt_tokens``/``input_tokens``/``promptTokenCount``); Anthropic's ``input_tokens`` excludes
them, so the cache fields are added back. Gemini reports thoughts outside its candidates count,
so they are added to the output.

These helpers raise :class:`ShapeError` (a ``ValueError``) when a field has the wrong type, so a
caller can tell "no usage" from "usage we could not read".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from addon.metering.usage import Usage

BAD_JSON = "bad_json"  # the error kind of a body we could not read
# More tokens than any model reads or writes in one request (context windows top out near
# 2 M): a count above it comes from a broken or hostile upstream. It is refused like a
# count of the wrong type, so the request is recorded with an estimate instead (flagged
# ``estimated``) and no cost is ever built from it.
MAX_TOKENS_PER_FIELD = 10_000_000
MAX_PROVIDER_COST_USD = 100_000  # a reported cost above it is dropped, like a negative one


class ShapeError(ValueError):
    """A usage object whose fields do not have the expected types."""


# json.loads(s, parse_float=Decimal) builds a decoder per call: a stream parses every event
_DECODER = json.JSONDecoder(parse_float=Decimal)


def load_json(body: bytes | bytearray | str) -> Any:
    """``json.loads(body, parse_float=Decimal)``: floats kept exact as ``Decimal``, bytes in
    any encoding JSON allows (``json.detect_encoding``), a BOM before a str refused as
    ``json.loads`` refuses it; raises ``ValueError``."""
    try:
        if not isinstance(body, str):
            body = bytes(body).decode(json.detect_encoding(body), "surrogatepass")
        elif body.startswith("\ufeff"):
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", body, 0)
        return _DECODER.decode(body)
    except RecursionError as exc:  # absurdly nested input
        raise ValueError("JSON nested too deeply") from exc


def count(obj: Mapping[str, Any], key: str) -> int:
    """A non-negative token count of at most ``MAX_TOKENS_PER_FIELD``; a missing or null
    field is 0. The magnitude is checked before any ``int()``: ``1e999999999`` is valid JSON."""
    value = obj.get(key)
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ShapeError(f"{key} is a boolean")
    if isinstance(value, Decimal):
        if not value.is_finite() or value.adjusted() > 18:
            raise ShapeError(f"{key} is absurd: {value!r}")
        if value != value.to_integral_value():
            raise ShapeError(f"{key} is not an integer: {value!r}")
    elif isinstance(value, float):
        if not value.is_integer():  # also nan and inf
            raise ShapeError(f"{key} is not an integer: {value!r}")
    elif not isinstance(value, int):
        raise ShapeError(f"{key} is not an integer: {value!r}")
    number = int(value)
    if number < 0:
        raise ShapeError(f"{key} is negative: {number}")
    if number > MAX_TOKENS_PER_FIELD:
        raise ShapeError(f"{key} is absurd: {number}")
    return number


def mapping(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """A nested object; a missing or null one is empty."""
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ShapeError(f"{key} is not an object")
    return value


def openai_usage(usage: Mapping[str, Any]) -> Usage:
    """Any OpenAI-family usage object: Chat/legacy/embeddings (``prompt_tokens``…) or the
    Responses API shape (``input_tokens``…), told apart by their keys. Reasoning tokens are
    part of ``completion_tokens`` (OpenAI, DeepSeek, OpenRouter), except where the provider
    counts them outside it (xAI), which ``total_tokens`` shows; then they are added."""
    if "prompt_tokens" not in usage and ("input_tokens" in usage or "output_tokens" in usage):
        return responses_usage(usage)
    prompt_details = mapping(usage, "prompt_tokens_details")
    if prompt_details.get("cached_tokens") is not None:
        cached = count(prompt_details, "cached_tokens")
    else:  # DeepSeek reports cache hits next to prompt_tokens
        cached = count(usage, "prompt_cache_hit_tokens")
    prompt = count(usage, "prompt_tokens")
    completion = count(usage, "completion_tokens")
    reasoning = count(mapping(usage, "completion_tokens_details"), "reasoning_tokens")
    return Usage(
        input_tokens=prompt,
        cached_input_tokens=cached,
        cache_write_tokens=count(prompt_details, "cache_write_tokens"),
        output_tokens=completion + reasoning
        if _outside(usage, prompt, completion, reasoning)
        else completion,
        reasoning_tokens=reasoning,
    )


def _outside(usage: Mapping[str, Any], prompt: int, completion: int, reasoning: int) -> bool:
    """Reasoning counted outside ``completion_tokens`` (xAI): the total says so, since
    ``total_tokens == prompt + completion + reasoning``. It is output, and billed as such."""
    if not reasoning or usage.get("total_tokens") is None:
        return False
    return count(usage, "total_tokens") == prompt + completion + reasoning


def responses_usage(usage: Mapping[str, Any]) -> Usage:
    """OpenAI Responses API ``usage``: ``input_tokens`` already includes cached tokens."""
    input_details = mapping(usage, "input_tokens_details")
    return Usage(
        input_tokens=count(usage, "input_tokens"),
        cached_input_tokens=count(input_details, "cached_tokens"),
        cache_write_tokens=count(input_details, "cache_write_tokens"),
        output_tokens=count(usage, "output_tokens"),
        reasoning_tokens=count(mapping(usage, "output_tokens_details"), "reasoning_tokens"),
    )


def anthropic_usage(usage: Mapping[str, Any]) -> Usage:
    """Anthropic ``usage``: ``input_tokens`` excludes cache reads and writes, so add them."""
    cache_read = count(usage, "cache_read_input_tokens")
    by_ttl = mapping(usage, "cache_creation")
    if usage.get("cache_creation_input_tokens") is not None:
        cache_write = count(usage, "cache_creation_input_tokens")
    else:
        cache_write = count(by_ttl, "ephemeral_5m_input_tokens") + count(
            by_ttl, "ephemeral_1h_input_tokens"
        )
    return Usage(
        input_tokens=count(usage, "input_tokens") + cache_write + cache_read,
        cached_input_tokens=cache_read,
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=count(by_ttl, "ephemeral_1h_input_tokens"),
        output_tokens=count(usage, "output_tokens"),
        reasoning_tokens=count(mapping(usage, "output_tokens_details"), "thinking_tokens"),
    )


def gemini_usage(usage: Mapping[str, Any]) -> Usage:
    """Gemini ``usageMetadata``. ``promptTokenCount`` includes cached content, and tool-use
    prompt tokens are input too. ``thoughtsTokenCount`` lies outside ``candidatesTokenCount`` and
    is billed as output, unless the counts show that the candidates already include it
    (prompt + candidates + tool use == total while thoughts > 0: LiteLLM's
    ``is_candidate_token_count_inclusive``), in which case it is not added twice."""
    prompt = count(usage, "promptTokenCount")
    tool_use = count(usage, "toolUsePromptTokenCount")
    candidates = count(usage, "candidatesTokenCount")
    thoughts = count(usage, "thoughtsTokenCount")
    inclusive = (
        thoughts > 0
        and usage.get("totalTokenCount") is not None
        and prompt + candidates + tool_use == count(usage, "totalTokenCount")
    )
    output = candidates if inclusive else candidates + thoughts
    return Usage(
        input_tokens=prompt + tool_use,
        cached_input_tokens=count(usage, "cachedContentTokenCount"),
        output_tokens=output,
        reasoning_tokens=min(thoughts, output),
    )


def provider_cost(usage: Mapping[str, Any]) -> str | None:
    """OpenRouter's ``usage.cost`` as an exact decimal string (JSON parsed with Decimal);
    None when absent, negative, not finite or above ``MAX_PROVIDER_COST_USD``."""
    cost = usage.get("cost")
    if isinstance(cost, bool) or not isinstance(cost, int | Decimal | float):
        return None
    if isinstance(cost, int) and abs(cost) > MAX_PROVIDER_COST_USD:  # before Decimal(): digits
        return None
    exact = Decimal(str(cost)) if isinstance(cost, float) else Decimal(cost)
    if not exact.is_finite() or not 0 <= exact <= MAX_PROVIDER_COST_USD:
        return None
    if exact and exact.adjusted() < -30:  # "1e-999999999" would format as a billion zeros
        return "0"
    return format(exact, "f")


def text(obj: Mapping[str, Any], key: str) -> str | None:
    """A non-empty string field, else None."""
    value = obj.get(key)
    return value if isinstance(value, str) and value else None
