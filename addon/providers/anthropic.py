"""Anthropic: the Messages API and count_tokens."""

from __future__ import annotations

from addon.providers.anthropic_style import (
    ANTHROPIC_STYLE,
    VERSION_HEADERS,
    anthropic_key_rejected,
)
from addon.providers.base import ANTHROPIC, Provider

PROVIDER = Provider(
    name="anthropic",
    hosts=("api.anthropic.com",),
    default_base_url="https://api.anthropic.com",
    auth=ANTHROPIC,
    wire=ANTHROPIC_STYLE,
    key_rejected=anthropic_key_rejected,
    test_path="/v1/models",
    test_headers=VERSION_HEADERS,
)
