"""Mistral: OpenAI-compatible; a 401 only ever means a bad key."""

from __future__ import annotations

from addon.providers.key_health import mistral_key_rejected
from addon.providers.openai_style import openai_compatible

PROVIDER = openai_compatible(
    "mistral", "api.mistral.ai", "https://api.mistral.ai/v1", key_rejected=mistral_key_rejected
)
