"""Groq: OpenAI-compatible below ``/openai/v1`` (usage may come in ``x_groq``)."""

from __future__ import annotations

from addon.providers.openai_style import openai_compatible

PROVIDER = openai_compatible("groq", "api.groq.com", "https://api.groq.com/openai/v1")
