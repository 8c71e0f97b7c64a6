"""The openrouter provider module: an OpenAI-compatible provider, as data."""

from __future__ import annotations

from addon.providers.base import BEARER
from addon.providers.openai_style import OPENAI_STYLE
from addon.providers.openrouter import PROVIDER


def test_openrouter_speaks_openai_at_its_own_host() -> None:
    assert (PROVIDER.name, PROVIDER.hosts, PROVIDER.default_base_url) == (
        "openrouter",
        ("openrouter.ai",),
        "https://openrouter.ai/api/v1",
    )
    assert (PROVIDER.auth, PROVIDER.wire) == (BEARER, OPENAI_STYLE)
    assert PROVIDER.api_for("POST", PROVIDER.base_path + "/chat/completions") == "openai.chat"
    assert not PROVIDER.injects_include_usage("openai.chat")  # it reports usage unasked


def test_openrouter_says_which_answers_mean_a_bad_key() -> None:
    assert (
        PROVIDER.key_rejected(401, b'{"error": {"message": "User not found.", "code": 401}}')
        == "401 invalid_key"
    )
    assert PROVIDER.key_rejected(403, b"{}") is None
