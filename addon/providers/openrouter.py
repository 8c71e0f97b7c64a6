"""OpenRouter: OpenAI-compatible; its streams report usage without being asked."""

from __future__ import annotations

from addon.providers.key_health import openrouter_key_rejected
from addon.providers.openai_style import openai_compatible

PROVIDER = openai_compatible(
    "openrouter",
    "openrouter.ai",
    "https://openrouter.ai/api/v1",
    stream_usage_opt_in=False,
    key_rejected=openrouter_key_rejected,
)
