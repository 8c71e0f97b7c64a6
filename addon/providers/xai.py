"""xAI: OpenAI-compatible; a bad key is a 400 "Incorrect API key provided"."""

from __future__ import annotations

from addon.providers.key_health import xai_key_rejected
from addon.providers.openai_style import openai_compatible

PROVIDER = openai_compatible(
    "xai", "api.x.ai", "https://api.x.ai/v1", key_rejected=xai_key_rejected
)
