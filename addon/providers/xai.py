"""xAI: OpenAI-compatible; a bad key is a 400 "Incorrect API key provided"."""

from __future__ import annotations

from addon.providers.key_health import message_text, openai_key_rejected
from addon.providers.openai_style import openai_compatible


def key_rejected(status: int, body: bytes) -> str | None:
    """400 ``{"code": "Client specified an invalid argument", "error": "Incorrect API key
    provided: xa***AB. …"}`` (the message may come URL-encoded)."""
    text = message_text(body).replace("%20", " ")
    if status in (400, 401) and "incorrect api key" in text:
        return f"{status} incorrect_api_key"
    return openai_key_rejected(status, body)


PROVIDER = openai_compatible("xai", "api.x.ai", "https://api.x.ai/v1", key_rejected=key_rejected)
