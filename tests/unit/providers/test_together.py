"""The together provider module: an OpenAI-compatible provider, as data."""

from __future__ import annotations

from addon.providers.base import BEARER
from addon.providers.openai_style import OPENAI_STYLE
from addon.providers.together import PROVIDER


def test_together_speaks_openai_at_its_own_host() -> None:
    assert (PROVIDER.name, PROVIDER.hosts, PROVIDER.default_base_url) == (
        "together",
        ("api.together.xyz",),
        "https://api.together.xyz/v1",
    )
    assert (PROVIDER.auth, PROVIDER.wire) == (BEARER, OPENAI_STYLE)
    assert PROVIDER.api_for("POST", PROVIDER.base_path + "/chat/completions") == "openai.chat"
    assert PROVIDER.injects_include_usage("openai.chat")


def test_together_says_which_answers_mean_a_bad_key() -> None:
    assert (
        PROVIDER.key_rejected(401, b'{"error": {"code": "invalid_api_key"}}')
        == "401 invalid_api_key"
    )
    assert PROVIDER.key_rejected(403, b"{}") is None
