"""The provider registry: lookup by host, endpoint classification, and allow_hosts patterns."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from mitmproxy.addons.next_layer import NextLayer
from mitmproxy.proxy.context import Context
from mitmproxy.test import taddons, tflow

from addon.providers.anthropic_style import ANTHROPIC_STYLE
from addon.providers.base import ANTHROPIC, AZURE, BEARER, GEMINI
from addon.providers.gemini import GEMINI_STYLE
from addon.providers.openai_style import OPENAI_STYLE
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


def test_auth_styles_and_wire_formats() -> None:
    assert (PROVIDERS["anthropic"].auth, PROVIDERS["anthropic"].wire) == (
        ANTHROPIC,
        ANTHROPIC_STYLE,
    )
    assert (PROVIDERS["gemini"].auth, PROVIDERS["gemini"].wire) == (GEMINI, GEMINI_STYLE)
    assert (PROVIDERS["azure"].auth, PROVIDERS["azure"].wire) == (AZURE, OPENAI_STYLE)
    others = [p for n, p in PROVIDERS.items() if n not in ("anthropic", "gemini", "azure")]
    assert all((p.auth, p.wire) == (BEARER, OPENAI_STYLE) for p in others)


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


@pytest.mark.parametrize("name", ["openai", "groq", "deepseek", "openrouter", "mistral"])
def test_repeated_slashes_are_classified_like_one(name: str) -> None:
    provider = PROVIDERS[name]
    single = provider.base_path + "/chat/completions"
    assert provider.api_for("POST", "/" + single.replace("/", "//")) == "openai.chat"
    assert provider.api_for("POST", single) == "openai.chat"


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
