"""OpenRouter: OpenAI-compatible; its streams report usage without being asked."""

from __future__ import annotations

from addon.providers.key_health import message_text, openai_key_rejected
from addon.providers.openai_style import openai_compatible


def key_rejected(status: int, body: bytes) -> str | None:
    """401 ``{"error": {"message": "User not found.", "code": 401}}`` (a deleted or unknown
    key) or "No auth credentials found"."""
    if status != 401:
        return None
    text = message_text(body)
    if "user not found" in text or "no auth credentials" in text:
        return "401 invalid_key"
    return openai_key_rejected(status, body)


PROVIDER = openai_compatible(
    "openrouter",
    "openrouter.ai",
    "https://openrouter.ai/api/v1",
    stream_usage_opt_in=False,
    key_rejected=key_rejected,
)
