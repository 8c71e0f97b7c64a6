"""DeepSeek: OpenAI-compatible, served at the root and below ``/v1`` alike."""

from __future__ import annotations

from addon.providers.key_health import deepseek_key_rejected
from addon.providers.openai_style import openai_compatible

PROVIDER = openai_compatible(
    "deepseek",
    "api.deepseek.com",
    "https://api.deepseek.com",
    alt_base_paths=("/v1",),
    key_rejected=deepseek_key_rejected,
)
