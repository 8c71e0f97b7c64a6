"""DeepSeek's provider module: both of its base paths."""

from __future__ import annotations

from addon.providers.deepseek import PROVIDER


def test_deepseek_v1_paths_are_classified_like_the_unprefixed_ones() -> None:
    deepseek = PROVIDER
    assert deepseek.api_for("POST", "/v1/chat/completions") == "openai.chat"
    assert deepseek.api_for("POST", "/v1/completions") == "openai.completions"
