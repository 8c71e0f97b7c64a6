"""Usage from a non-streamed (buffered JSON) provider response.

``parse_openai`` and ``parse_anthropic`` never raise. A body that is not JSON, not an object,
or whose ``usage`` has the wrong shape gives ``error_kind="bad_json"``. A well-formed body
without usage (e.g. a provider error) gives ``usage=None``, and for a provider error body
``error_kind`` is the provider's error code, type or status. The provider request id is not
read from the body (callers take it from headers), except for Gemini, whose only id is the
body's ``responseId``. Gemini bodies are read by :mod:`addon.metering.gemini`, which also fills
``output_text``. Which meter reads which api is said by its wire format
(``addon.providers.wire.parse_response``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from addon.metering.media import MEDIA_APIS, parse_media_response
from addon.metering.normalise import (
    BAD_JSON,
    anthropic_usage,
    count,
    load_json,
    mapping,
    openai_usage,
    provider_cost,
    responses_usage,
    text,
)
from addon.metering.usage import MeterResult, Usage

__all__ = ["BAD_JSON", "load_json", "parse_anthropic", "parse_openai", "provider_error_kind"]


def provider_error_kind(doc: Mapping[str, Any]) -> str | None:
    """The error kind of a provider error body, or None when ``doc`` is not an error.

    Anthropic: ``{"type": "error", "error": {"type": ...}}`` → that type.
    OpenAI-style: ``{"error": {"code": ..., "type": ...}}`` → code, else type.
    """
    error = doc.get("error")
    if doc.get("type") == "error" and isinstance(error, Mapping):
        return text(error, "type") or "error"
    if isinstance(error, Mapping):
        return text(error, "code") or text(error, "type") or text(error, "status") or "error"
    if isinstance(error, str) and error:
        return "error"
    return None


def parse_openai(api: str, body: bytes) -> MeterResult:
    """Usage, model and provider error of a buffered OpenAI-style response of ``api``.

    ``api`` is one of ``openai.chat``, ``openai.completions``, ``openai.embeddings``,
    ``openai.responses``, ``openai.count_tokens`` (``/responses/input_tokens``), a media API
    (images, transcriptions, speech: see :mod:`addon.metering.media`) or ``openai.other``.
    count_tokens is free: its count goes to ``extras["counted_input_tokens"]`` and ``usage``
    stays None.
    """
    if api in MEDIA_APIS:
        return parse_media_response(api, body)
    return _parse(body, counts=api == "openai.count_tokens", responses=api == "openai.responses")


def parse_anthropic(api: str, body: bytes) -> MeterResult:
    """The same for an Anthropic-style response: ``anthropic.messages``,
    ``anthropic.count_tokens`` (free, as above) or ``anthropic.other``."""
    return _parse(body, counts=api == "anthropic.count_tokens", anthropic=True)


def _parse(
    body: bytes, *, counts: bool, anthropic: bool = False, responses: bool = False
) -> MeterResult:
    try:
        doc = load_json(body)
    except ValueError:
        return MeterResult(error_kind=BAD_JSON)
    if not isinstance(doc, Mapping):
        return MeterResult(error_kind=BAD_JSON)
    model = text(doc, "model")
    error_kind = provider_error_kind(doc)
    try:
        if counts:
            return _count_tokens_result(doc, model, error_kind)
        usage, extras = _usage(doc, anthropic=anthropic, responses=responses)
    except ValueError:
        return MeterResult(model=model, error_kind=BAD_JSON)
    return MeterResult(usage=usage, model=model, error_kind=error_kind, extras=extras)


def _count_tokens_result(
    doc: Mapping[str, Any], model: str | None, error_kind: str | None
) -> MeterResult:
    if error_kind is not None:
        return MeterResult(model=model, error_kind=error_kind)
    if "input_tokens" not in doc:
        return MeterResult(model=model, error_kind=BAD_JSON)
    extras = {"counted_input_tokens": count(doc, "input_tokens")}
    return MeterResult(model=model, extras=extras)


def _usage(
    doc: Mapping[str, Any], *, anthropic: bool, responses: bool
) -> tuple[Usage | None, dict[str, Any]]:
    extras: dict[str, Any] = {}
    raw = mapping(doc, "usage")
    if anthropic:
        tier = text(raw, "service_tier")
        parse = anthropic_usage
    else:
        raw = raw or mapping(mapping(doc, "x_groq"), "usage")
        tier = text(doc, "service_tier")
        parse = responses_usage if responses else openai_usage
        cost = provider_cost(raw)
        if cost is not None:
            extras["provider_cost"] = cost
    if tier is not None:
        extras["service_tier"] = tier
    return (parse(raw) if raw else None), extras
