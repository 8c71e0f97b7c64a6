"""Fireworks AI: OpenAI-compatible below ``/inference/v1``."""

from __future__ import annotations

from addon.providers.openai_style import openai_compatible

PROVIDER = openai_compatible(
    "fireworks", "api.fireworks.ai", "https://api.fireworks.ai/inference/v1"
)
