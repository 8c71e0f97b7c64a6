"""Usage of the paid endpoints that are not token APIs: images, transcription, speech.

What a provider bills for these is read from two places. The response says what it can:
gpt-image models report ``usage`` (text and image tokens), transcriptions report ``usage``
(tokens, or ``{"type": "duration", "seconds": …}``) or a ``duration`` (``verbose_json``), image
answers list the images made (``data``) and, for gpt-image models, their ``size`` and
``quality``. The request says the rest: the model (JSON or a multipart form field), how many
images of which size and quality, and the text to speak (speech is billed per character).

``parse_media_response`` never raises; a body that is not JSON (audio, ``text``/``srt``/``vtt``
transcripts) is not an error here: it simply reports nothing. ``request_facts`` reads the
request body; multipart forms are read without decoding their file parts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from addon.metering.normalise import BAD_JSON, count, mapping, text
from addon.metering.usage import MeterResult, Usage

IMAGE_APIS = frozenset({"openai.images", "openai.image_edits", "openai.image_variations"})
TRANSCRIPTION_APIS = frozenset({"openai.transcriptions", "openai.translations"})
SPEECH_APIS = frozenset({"openai.speech"})
MEDIA_APIS = IMAGE_APIS | TRANSCRIPTION_APIS | SPEECH_APIS
_FORM_FIELDS = ("model", "n", "size", "quality", "response_format")
MAX_SECONDS = Decimal(10**7)  # more than 115 days of audio: not a real answer


def media_kind(api: str) -> str | None:
    """``image``, ``transcription`` or ``speech`` for a media API, else None."""
    if api in IMAGE_APIS:
        return "image"
    if api in TRANSCRIPTION_APIS:
        return "transcription"
    if api in SPEECH_APIS:
        return "speech"
    return None


@dataclass(frozen=True)
class TokenSplit:
    """Reported token counts by modality; ``cached_*`` are subsets of their inputs."""

    text_input: int = 0
    cached_text_input: int = 0
    image_input: int = 0
    cached_image_input: int = 0
    audio_input: int = 0
    text_output: int = 0
    image_output: int = 0
    audio_output: int = 0

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if v}


@dataclass(frozen=True)
class MediaUsage:
    """What one media request used, as far as the request and response tell."""

    kind: str  # image | transcription | speech
    images: int = 0
    size: str | None = None
    quality: str | None = None
    seconds: Decimal | None = None
    characters: int = 0
    tokens: TokenSplit | None = None

    def as_json(self) -> dict[str, Any]:
        """The JSON-safe form kept in a record's extras (``media_usage_from_json`` reads it)."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.images:
            out["images"] = self.images
        if self.size:
            out["size"] = self.size
        if self.quality:
            out["quality"] = self.quality
        if self.seconds is not None:
            out["seconds"] = str(self.seconds)
        if self.characters:
            out["characters"] = self.characters
        if self.tokens is not None:
            out["tokens"] = self.tokens.as_dict()
        return out


def media_usage_from_json(data: object) -> MediaUsage | None:
    """A MediaUsage from its stored JSON form, or None if ``data`` is not one."""
    if not isinstance(data, Mapping) or data.get("kind") not in (
        "image",
        "transcription",
        "speech",
    ):
        return None
    try:
        tokens = data.get("tokens")
        split = None
        if isinstance(tokens, Mapping):
            split = TokenSplit(**{k: count(tokens, k) for k in TokenSplit.__dataclass_fields__})
        return MediaUsage(
            kind=str(data["kind"]),
            images=count(data, "images"),
            size=text(data, "size"),
            quality=text(data, "quality"),
            seconds=_seconds(data.get("seconds")),
            characters=count(data, "characters"),
            tokens=split,
        )
    except ValueError:
        return None


def _seconds(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        seconds = Decimal(str(value))  # str(): a float's shortest repr, never its binary value
    except InvalidOperation:
        return None
    return seconds if seconds.is_finite() and 0 <= seconds <= MAX_SECONDS else None


def parse_media_response(api: str, body: bytes) -> MeterResult:
    """Usage (token totals), model and media facts (``extras["media"]``) from an answer."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return MeterResult()  # audio bytes or a plain-text transcript: nothing reported
    if not isinstance(doc, Mapping):
        return MeterResult()
    error_kind = _provider_error_kind(doc)
    if error_kind is not None:
        return MeterResult(model=text(doc, "model"), error_kind=error_kind)
    try:
        facts, split = _response_facts(api, doc)
    except ValueError:
        return MeterResult(model=text(doc, "model"), error_kind=BAD_JSON)
    usage = None
    if split is not None:
        facts["tokens"] = split.as_dict()
        usage = _totals(split)
    return MeterResult(usage=usage, model=text(doc, "model"), extras={"media": facts})


def _response_facts(api: str, doc: Mapping[str, Any]) -> tuple[dict[str, Any], TokenSplit | None]:
    raw = mapping(doc, "usage")
    facts: dict[str, Any] = {}
    if api in IMAGE_APIS:
        data = doc.get("data")
        if isinstance(data, list):
            facts["images"] = len(data)
        for name in ("size", "quality"):
            if text(doc, name):
                facts[name] = text(doc, name)
        return facts, _image_tokens(raw) if raw else None
    if api in TRANSCRIPTION_APIS:
        seconds = _seconds(doc.get("duration"))
        if raw and raw.get("type") == "duration":
            seconds = _seconds(raw.get("seconds"))
        if seconds is not None:
            facts["seconds"] = str(seconds)
        tokens = raw and raw.get("type", "tokens") == "tokens" and "input_tokens" in raw
        return facts, _audio_in_tokens(raw) if tokens else None
    return facts, _speech_tokens(raw) if raw and "input_tokens" in raw else None


def _split(total: int, details: Mapping[str, Any], a: str, b: str) -> tuple[int, int]:
    """(a, b) parts of ``total`` from ``details``; what details do not place goes to ``a``."""
    if not details:
        return total, 0
    part_b = min(count(details, b), total)
    return total - part_b, part_b


def _image_tokens(raw: Mapping[str, Any]) -> TokenSplit:
    details = mapping(raw, "input_tokens_details")
    text_in, image_in = _split(count(raw, "input_tokens"), details, "text_tokens", "image_tokens")
    cached = mapping(details, "cached_tokens_details")
    cached_image = min(count(cached, "image_tokens"), image_in)
    cached_text = min(count(details, "cached_tokens") - cached_image, text_in)
    out_details = mapping(raw, "output_tokens_details")
    image_out, text_out = _split(
        count(raw, "output_tokens"), out_details, "image_tokens", "text_tokens"
    )
    return TokenSplit(
        text_input=text_in,
        cached_text_input=max(cached_text, 0),
        image_input=image_in,
        cached_image_input=cached_image,
        text_output=text_out,
        image_output=image_out,
    )


def _audio_in_tokens(raw: Mapping[str, Any]) -> TokenSplit:
    details = mapping(raw, "input_token_details") or mapping(raw, "input_tokens_details")
    audio_in, text_in = _split(count(raw, "input_tokens"), details, "audio_tokens", "text_tokens")
    return TokenSplit(
        text_input=text_in, audio_input=audio_in, text_output=count(raw, "output_tokens")
    )


def _speech_tokens(raw: Mapping[str, Any]) -> TokenSplit:
    return TokenSplit(
        text_input=count(raw, "input_tokens"), audio_output=count(raw, "output_tokens")
    )


def _totals(s: TokenSplit) -> Usage:
    return Usage(
        input_tokens=s.text_input + s.image_input + s.audio_input,
        cached_input_tokens=s.cached_text_input + s.cached_image_input,
        output_tokens=s.text_output + s.image_output + s.audio_output,
    )


def request_facts(api: str, body: bytes | None) -> dict[str, Any]:
    """The billing facts of a media request body: model, n, size, quality, characters."""
    if not body:
        return {}
    fields = _form_fields(body) if body.startswith(b"--") else _json_fields(body)
    facts: dict[str, Any] = {}
    for name in ("model", "size", "quality"):
        value = fields.get(name)
        if isinstance(value, str) and value.strip():
            facts[name] = value.strip()[:200]
    n = fields.get("n")
    if isinstance(n, str) and n.strip().isdigit():
        n = int(n.strip())
    if isinstance(n, int) and not isinstance(n, bool) and n > 0:
        facts["n"] = n
    spoken = fields.get("input")
    if api in SPEECH_APIS and isinstance(spoken, str):
        facts["characters"] = len(spoken)
    return facts


def _json_fields(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return dict(doc) if isinstance(doc, dict) else {}


def _form_fields(body: bytes) -> dict[str, Any]:
    """The small text fields of a multipart/form-data body; file parts are skipped unread
    (no copy of an uploaded file is made)."""
    delimiter = body[: body.find(b"\r\n")] if b"\r\n" in body[:200] else b""
    out: dict[str, Any] = {}
    if len(delimiter) < 3:
        return out
    start = len(delimiter)
    while len(out) < len(_FORM_FIELDS):
        end = body.find(delimiter, start)
        if end < 0:
            break
        head_end = body.find(b"\r\n\r\n", start, min(end, start + 2048))
        if head_end >= 0:
            head = body[start:head_end]
            name = _form_name(head)
            small = end - head_end <= 1030
            if name in _FORM_FIELDS and b"filename=" not in head and small:
                value = body[head_end + 4 : end].removesuffix(b"\r\n")
                out[name] = value.decode("utf-8", "replace")
        start = end + len(delimiter)
    return out


def _form_name(head: bytes) -> str | None:
    marker = b'name="'
    start = head.find(marker)
    if start < 0:
        return None
    end = head.find(b'"', start + len(marker))
    return head[start + len(marker) : end].decode("utf-8", "replace") if end > 0 else None


def _provider_error_kind(doc: Mapping[str, Any]) -> str | None:
    """An OpenAI-style error body's code or type (``{"error": {...}}``), else None."""
    error = doc.get("error")
    if isinstance(error, Mapping):
        return text(error, "code") or text(error, "type") or "error"
    return "error" if isinstance(error, str) and error else None
