"""Mistral: OpenAI-compatible; a 401 only ever means a bad key."""

from __future__ import annotations

from addon.providers.key_health import message_text
from addon.providers.openai_style import openai_compatible


def key_rejected(status: int, body: bytes) -> str | None:
    """401 ``{"message": "Unauthorized"}`` or ``{"detail": "Unauthorized"}``: Mistral answers
    401 only for a missing or bad key."""
    if status == 401 and "unauthorized" in message_text(body):
        return "401 unauthorized"
    return None


PROVIDER = openai_compatible(
    "mistral", "api.mistral.ai", "https://api.mistral.ai/v1", key_rejected=key_rejected
)
