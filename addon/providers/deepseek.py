"""DeepSeek: OpenAI-compatible, served at the root and below ``/v1`` alike."""

from __future__ import annotations

from addon.providers.key_health import error_object
from addon.providers.openai_style import openai_compatible


def key_rejected(status: int, body: bytes) -> str | None:
    """401 ``authentication_error`` "Authentication Fails, Your api key: ****abcd is invalid"."""
    if status == 401 and error_object(body).get("type") == "authentication_error":
        return "401 authentication_error"
    return None


PROVIDER = openai_compatible(
    "deepseek",
    "api.deepseek.com",
    "https://api.deepseek.com",
    alt_base_paths=("/v1",),
    key_rejected=key_rejected,
)
