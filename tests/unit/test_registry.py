"""The provider registry: lookup by host, endpoint classification, and allow_hosts patterns."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from mitmproxy.addons.next_layer import NextLayer
from mitmproxy.proxy.context import Context
from mitmproxy.test import taddons, tflow

from addon.providers.base import ANTHROPIC, AZURE, BEARER, GEMINI
from addon.providers.registry import PROVIDERS, allow_hosts_patterns, by_host

HOSTS = {
    "openai": "api.openai.com",
    "anthropic": "api.anthropic.com",
    "mistral": "api.mistral.ai",
    "groq": "api.groq.com",
    "deepseek": "api.deepseek.com",
    "xai": "api.x.ai",
    "openrouter": "openrouter.ai",
    "together": "api.together.xyz",
    "fireworks": "api.fireworks.ai",
}


# providers with their own wire format or URL scheme, tested separately below
OWN_FORMAT = {"gemini": "generativelanguage.googleapis.com", "azure": "myres.openai.azure.com"}
AZURE_HOSTS = ("*.openai.azure.com", "*.cognitiveservices.azure.com", "*.services.ai.azure.com")


def test_the_documented_providers_are_built_in() -> None:
    assert set(PROVIDERS) == set(HOSTS) | set(OWN_FORMAT)


@pytest.mark.parametrize(("name", "host"), sorted(HOSTS.items()))
def test_by_host_finds_each_provider(name: str, host: str) -> None:
    provider = by_host(host)
    assert provider is not None and provider.name == name
    assert by_host(host.upper()) is provider
    assert by_host(host + ".") is provider  # fully qualified form


@pytest.mark.parametrize(
    "host",
    [
        "",
        "example.com",
        "openai.com",
        "xapi.openai.com",
        "api.openai.com.evil",
        "api.openai.com:443",
    ],
)
def test_by_host_knows_nothing_else(host: str) -> None:
    assert by_host(host) is None


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_default_base_url_points_at_the_providers_own_host(name: str) -> None:
    provider = PROVIDERS[name]
    parts = urlsplit(provider.default_base_url)
    assert parts.scheme == "https"
    assert parts.hostname in provider.hosts
    assert provider.base_path == parts.path.rstrip("/")


def test_auth_styles_and_error_shapes() -> None:
    assert (PROVIDERS["anthropic"].auth, PROVIDERS["anthropic"].error_shape) == (
        ANTHROPIC,
        "anthropic",
    )
    assert (PROVIDERS["gemini"].auth, PROVIDERS["gemini"].error_shape) == (GEMINI, "gemini")
    assert (PROVIDERS["azure"].auth, PROVIDERS["azure"].error_shape) == (AZURE, "openai")
    others = [p for n, p in PROVIDERS.items() if n not in ("anthropic", "gemini", "azure")]
    assert all((p.auth, p.error_shape) == (BEARER, "openai") for p in others)


def test_openai_strips_organisation_and_project_headers() -> None:
    assert set(PROVIDERS["openai"].strip_headers) >= {"openai-organization", "openai-project"}


def test_only_openrouter_and_gemini_send_stream_usage_without_being_asked() -> None:
    unasked = sorted(n for n, p in PROVIDERS.items() if not p.stream_usage_opt_in)
    assert unasked == ["gemini", "openrouter"]


# --- endpoint classification ------------------------------------------------------------

OPENAI_FAMILY = sorted(n for n in HOSTS if n != "anthropic")


@pytest.mark.parametrize(
    ("suffix", "api"),
    [
        ("/chat/completions", "openai.chat"),
        ("/completions", "openai.completions"),
        ("/embeddings", "openai.embeddings"),
        ("/responses", "openai.responses"),
        ("/responses/input_tokens", "openai.count_tokens"),
        ("/models", "openai.other"),
        ("/audio/speech", "openai.speech"),
        ("/audio/transcriptions", "openai.transcriptions"),
        ("/audio/translations", "openai.translations"),
        ("/images/generations", "openai.images"),
        ("/images/edits", "openai.image_edits"),
        ("/images/variations", "openai.image_variations"),
        ("/moderations", "openai.moderations"),
        ("/audio/voices", "openai.other"),
        ("/realtime/client_secrets", "openai.realtime"),
        ("/chat/completions/abc123", "openai.other"),
    ],
)
@pytest.mark.parametrize("name", OPENAI_FAMILY)
def test_openai_style_endpoints_under_each_base_path(name: str, suffix: str, api: str) -> None:
    provider = PROVIDERS[name]
    assert provider.api_for("POST", provider.base_path + suffix) == api


@pytest.mark.parametrize(
    ("method", "path", "api"),
    [
        ("post", "/v1/chat/completions", "openai.chat"),  # method case does not matter
        ("POST", "/v1/chat/completions/", "openai.chat"),  # trailing slash
        ("POST", "/v1/chat/completions?api-version=1", "openai.chat"),  # query string
        ("GET", "/v1/chat/completions", "openai.other"),  # listing stored completions
        ("GET", "/v1/models", "openai.other"),
        ("POST", "/v1/responses/resp_1/cancel", "openai.other"),
        ("DELETE", "/v1/responses/resp_1", "openai.other"),
        ("GET", "/v1/realtime?model=gpt-realtime", "openai.realtime"),  # the websocket
        ("POST", "/chat/completions", "openai.chat"),  # no /v1: still the same API name
    ],
)
def test_openai_classification_details(method: str, path: str, api: str) -> None:
    assert PROVIDERS["openai"].api_for(method, path) == api


@pytest.mark.parametrize(
    ("method", "path", "api"),
    [
        ("POST", "/v1/messages", "anthropic.messages"),
        ("POST", "/v1/messages?beta=true", "anthropic.messages"),
        ("POST", "/v1/messages/count_tokens", "anthropic.count_tokens"),
        ("POST", "/v1/messages/batches", "anthropic.other"),
        ("GET", "/v1/messages", "anthropic.other"),
        ("GET", "/v1/models", "anthropic.other"),
        ("POST", "/v1/complete", "anthropic.other"),
        ("POST", "/messages", "anthropic.other"),
    ],
)
def test_anthropic_classification(method: str, path: str, api: str) -> None:
    assert PROVIDERS["anthropic"].api_for(method, path) == api


def test_deepseek_v1_paths_are_classified_like_the_unprefixed_ones() -> None:
    deepseek = PROVIDERS["deepseek"]
    assert deepseek.api_for("POST", "/v1/chat/completions") == "openai.chat"
    assert deepseek.api_for("POST", "/v1/completions") == "openai.completions"


# --- allow_hosts ------------------------------------------------------------------------


def allowed(host: str) -> bool:
    """mitmproxy's test: re.search of each pattern, case-insensitively, on ``host:port``."""
    return any(re.search(p, host, re.IGNORECASE) for p in allow_hosts_patterns())


@pytest.mark.parametrize("host", sorted(HOSTS.values()))
@pytest.mark.parametrize("suffix", ["", ":443", ":80", ":8443"])
def test_allow_hosts_match_every_provider_host_with_and_without_a_port(
    host: str, suffix: str
) -> None:
    assert allowed(host + suffix)
    assert allowed(host.upper() + suffix)


@pytest.mark.parametrize(
    "host",
    [
        "xapi.openai.com:443",
        "api.openai.com.evil:443",
        "api.openai.com.evil.com:443",
        "api.openai.com.:443",
        "apixopenaixcom:443",  # the dots are literal
        "evil.com:443",
        "evil.com/api.openai.com:443",
        "api.openai.com:443x",
        "api.openai.com:",
        "api.openai.com:443:443",
        "sub.api.anthropic.com:443",
        "openrouter.ai.example:443",
        "127.0.0.1:443",
    ],
)
def test_allow_hosts_match_nothing_else(host: str) -> None:
    assert not allowed(host)


def test_one_pattern_per_host() -> None:
    assert len(allow_hosts_patterns()) == len(HOSTS) + 1 + len(AZURE_HOSTS)


@pytest.mark.parametrize(
    ("host", "name"),
    [
        ("myres.openai.azure.com", "azure"),
        ("a-b.cognitiveservices.azure.com", "azure"),
        ("x.services.ai.azure.com", "azure"),
        ("openai.azure.com", None),
        ("myres.openai.azure.com.evil.example", None),
        ("generativelanguage.googleapis.com", "gemini"),
    ],
)
def test_wildcard_and_gemini_hosts(host: str, name: str | None) -> None:
    found = by_host(host)
    assert (found.name if found else None) == name
    matched = any(re.search(p, f"{host}:443") for p in allow_hosts_patterns())
    assert matched == (name is not None)


@pytest.mark.parametrize(
    ("path", "api", "model"),
    [
        (
            "/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21",
            "openai.chat",
            "prod-4o",
        ),
        ("/openai/deployments/emb/embeddings?api-version=2024-10-21", "openai.embeddings", "emb"),
        ("/openai/v1/chat/completions", "openai.chat", None),
        ("/openai/v1/responses", "openai.responses", None),
        # older openai SDKs join the base URL and the path with a repeated slash
        ("//openai/deployments/gpt-4o/chat/completions?api-version=1", "openai.chat", "gpt-4o"),
        ("/openai//deployments/gpt-4o//embeddings", "openai.embeddings", "gpt-4o"),
        ("//openai/v1/responses", "openai.responses", None),
    ],
)
def test_azure_paths(path: str, api: str, model: str | None) -> None:
    azure = PROVIDERS["azure"]
    assert azure.api_for("POST", path) == api
    assert azure.model_in_path is not None and azure.model_in_path(path) == model


@pytest.mark.parametrize("name", ["openai", "groq", "deepseek", "openrouter", "mistral"])
def test_repeated_slashes_are_classified_like_one(name: str) -> None:
    provider = PROVIDERS[name]
    single = provider.base_path + "/chat/completions"
    assert provider.api_for("POST", "/" + single.replace("/", "//")) == "openai.chat"
    assert provider.api_for("POST", single) == "openai.chat"


@pytest.mark.parametrize(
    ("path", "api"),
    [
        ("/v1beta/openai/chat/completions", "openai.chat"),
        ("/v1beta/openai/embeddings", "openai.embeddings"),
        ("/v1beta/openai//chat/completions", "openai.chat"),
        ("/v1beta/openai/models", "openai.other"),
    ],
)
def test_gemini_openai_compatible_api_is_metered_as_openai(path: str, api: str) -> None:
    gemini = PROVIDERS["gemini"]
    assert gemini.api_for("POST", path) == api
    assert gemini.model_in_path is not None and gemini.model_in_path(path) is None


@pytest.mark.parametrize(
    ("path", "api"),
    [
        ("/v1beta/models/gemini-2.5-flash:generateContent", "gemini.generate"),
        ("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", "gemini.stream"),
        ("/v1beta/models/gemini-2.5-flash:streamGenerateContent", "gemini.stream"),
        ("/v1beta/models/gemini-2.5-flash:countTokens", "gemini.count_tokens"),
        ("/v1beta/models", "gemini.other"),
    ],
)
def test_gemini_paths(path: str, api: str) -> None:
    gemini = PROVIDERS["gemini"]
    assert gemini.api_for("POST", path) == api
    if api != "gemini.other":
        assert gemini.model_in_path is not None
        assert gemini.model_in_path(path) == "gemini-2.5-flash"


@pytest.mark.parametrize(
    ("address", "intercepted"),
    [
        (("api.openai.com", 443), True),
        (("api.anthropic.com", 443), True),
        (("xapi.openai.com", 443), False),
        (("api.openai.com.evil", 443), False),
        (("example.com", 443), False),
    ],
)
def test_mitmproxy_itself_intercepts_only_provider_hosts(
    address: tuple[str, int], intercepted: bool
) -> None:
    nl = NextLayer()
    with taddons.context(nl) as tctx:
        tctx.configure(nl, allow_hosts=allow_hosts_patterns())
        context = Context(tflow.tclient_conn(), tctx.options)
        context.server.address = address
        assert nl._ignore_connection(context, b"", b"") is (not intercepted)
