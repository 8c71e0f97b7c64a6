"""Together AI: OpenAI-compatible."""

from __future__ import annotations

from addon.providers.openai_style import openai_compatible

PROVIDER = openai_compatible("together", "api.together.xyz", "https://api.together.xyz/v1")
