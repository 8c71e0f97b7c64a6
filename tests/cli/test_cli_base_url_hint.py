"""``providers add`` warns when an OpenAI-style --base-url has no path (it still adds the key)."""

from __future__ import annotations

import pytest

from cli.base_url_hint import missing_path_warning


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("HINT_TEST_KEY", "sk-hint-test-0000000000000000000000wxyz")
    return "HINT_TEST_KEY"


def _warnings(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("Warning:")]


@pytest.mark.parametrize(
    ("provider", "url"),
    [("openai", "http://10.0.0.5:8000"), ("groq", "https://eu.example/"), ("mistral", "http://m")],
)
def test_openai_style_base_url_without_path_warns_once(ok, key_env, provider, url):
    result = ok("providers", "add", provider, "--api-key-env", key_env, "--base-url", url)
    (warning,) = _warnings(result)
    assert url in warning and "no path" in warning
    base_path = "/openai/v1" if provider == "groq" else "/v1"
    assert warning.endswith(f"e.g. {url.rstrip('/')}{base_path}")
    assert "Added" in result.stderr  # the key is added all the same


@pytest.mark.parametrize(
    ("provider", "url"),
    [
        ("openai", "http://10.0.0.5:8000/v1"),
        ("anthropic", "http://10.0.0.5:8000"),
        ("gemini", "http://10.0.0.5:8000"),
        ("deepseek", "https://api.deepseek.com"),  # DeepSeek's own base has no path
        ("azure", "https://myres.openai.azure.com"),
    ],
)
def test_no_warning_where_a_bare_host_is_right(ok, key_env, provider, url):
    result = ok("providers", "add", provider, "--api-key-env", key_env, "--base-url", url)
    assert _warnings(result) == []


def test_no_warning_without_base_url(ok, key_env):
    assert _warnings(ok("providers", "add", "openai", "--api-key-env", key_env)) == []


def test_a_defined_openai_style_provider_is_checked_too(ok, key_env):
    ok("providers", "define", "vllm", "--base-url", "http://10.0.0.5:8000/v1")
    result = ok("providers", "add", "vllm", "--api-key-env", key_env, "--base-url", "http://gpu2")
    (warning,) = _warnings(result)
    assert warning.endswith("e.g. http://gpu2/v1")


def test_the_message_names_where_requests_would_go():
    warning = missing_path_warning("https://api.openai.com/v1", "http://h:1")
    assert warning is not None
    assert "/v1/chat/completions goes to http://h:1/chat/completions" in warning
    assert missing_path_warning("https://api.anthropic.com", "http://h:1") is None
