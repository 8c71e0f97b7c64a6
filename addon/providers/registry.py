"""The built-in providers. Adding one is a few lines of data here (and a meter if its
wire format is not OpenAI's or Anthropic's)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from addon.providers.base import (
    ANTHROPIC,
    AZURE,
    BEARER,
    GEMINI,
    Provider,
    anthropic_classify,
    azure_classify,
    azure_deployment,
    gemini_classify,
    gemini_model,
    openai_classify,
)
from addon.providers.key_health import (
    KeyCheck,
    anthropic_key_rejected,
    azure_key_rejected,
    compatible_key_rejected,
    deepseek_key_rejected,
    gemini_key_rejected,
    gemini_retry_delay,
    mistral_key_rejected,
    openai_key_rejected,
    openrouter_key_rejected,
    xai_key_rejected,
)

ANTHROPIC_VERSION = (("anthropic-version", "2023-06-01"),)


def _openai_compatible(
    name: str,
    host: str,
    base_url: str,
    *,
    stream_usage_opt_in: bool = True,
    alt_base_paths: tuple[str, ...] = (),
    key_rejected: KeyCheck = openai_key_rejected,
) -> Provider:
    return Provider(
        name=name,
        hosts=(host,),
        default_base_url=base_url,
        auth=BEARER,
        error_shape="openai",
        classify=openai_classify,
        stream_usage_opt_in=stream_usage_opt_in,
        alt_base_paths=alt_base_paths,
        key_rejected=key_rejected,
    )


PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider(
            name="openai",
            hosts=("api.openai.com",),
            default_base_url="https://api.openai.com/v1",
            auth=BEARER,
            error_shape="openai",
            classify=openai_classify,
            strip_headers=("openai-organization", "openai-project"),
        ),
        Provider(
            name="anthropic",
            hosts=("api.anthropic.com",),
            default_base_url="https://api.anthropic.com",
            auth=ANTHROPIC,
            error_shape="anthropic",
            classify=anthropic_classify,
            key_rejected=anthropic_key_rejected,
            test_path="/v1/models",
            test_headers=ANTHROPIC_VERSION,
        ),
        Provider(
            name="gemini",
            hosts=("generativelanguage.googleapis.com",),
            default_base_url="https://generativelanguage.googleapis.com",
            auth=GEMINI,
            error_shape="gemini",
            classify=gemini_classify,
            stream_usage_opt_in=False,
            model_in_path=gemini_model,
            key_rejected=gemini_key_rejected,
            retry_hint=gemini_retry_delay,
            test_path="/v1beta/models",
        ),
        Provider(
            name="azure",
            hosts=(
                "*.openai.azure.com",
                "*.cognitiveservices.azure.com",
                "*.services.ai.azure.com",
            ),
            default_base_url="",  # per resource: the client's destination, or the key's URL
            auth=AZURE,
            error_shape="openai",
            classify=azure_classify,
            model_in_path=azure_deployment,
            key_rejected=azure_key_rejected,
            test_path="/openai/models?api-version=2024-10-21",
        ),
        _openai_compatible(
            "mistral",
            "api.mistral.ai",
            "https://api.mistral.ai/v1",
            key_rejected=mistral_key_rejected,
        ),
        _openai_compatible("groq", "api.groq.com", "https://api.groq.com/openai/v1"),
        _openai_compatible(
            "deepseek",
            "api.deepseek.com",
            "https://api.deepseek.com",
            alt_base_paths=("/v1",),
            key_rejected=deepseek_key_rejected,
        ),
        _openai_compatible("xai", "api.x.ai", "https://api.x.ai/v1", key_rejected=xai_key_rejected),
        _openai_compatible(
            "openrouter",
            "openrouter.ai",
            "https://openrouter.ai/api/v1",
            stream_usage_opt_in=False,
            key_rejected=openrouter_key_rejected,
        ),
        _openai_compatible("together", "api.together.xyz", "https://api.together.xyz/v1"),
        _openai_compatible(
            "fireworks", "api.fireworks.ai", "https://api.fireworks.ai/inference/v1"
        ),
    )
}


class Registry:
    """Built-in providers plus the ones operators define (``tollkeeper providers define``)."""

    def __init__(self, custom: tuple[Provider, ...] = ()) -> None:
        builtin_names = set(PROVIDERS)
        self.providers = {**PROVIDERS, **{p.name: p for p in custom if p.name not in builtin_names}}
        every = list(self.providers.values())
        # built-ins last, so a custom definition naming a built-in host never takes it over
        self._by_host = {h: p for p in every[::-1] for h in p.hosts if not h.startswith("*.")}
        self._wildcard = [p for p in every if any(h.startswith("*.") for h in p.hosts)]

    def by_host(self, host: str) -> Provider | None:
        host = host.lower().rstrip(".")
        found = self._by_host.get(host)
        if found is not None:
            return found
        return next((p for p in self._wildcard if p.matches_host(host)), None)

    def allow_hosts_patterns(self) -> list[str]:
        """Regexes for mitmproxy's ``allow_hosts``: intercept provider hosts only."""
        hosts = sorted({h for p in self.providers.values() for h in p.hosts})
        return [host_pattern(h) for h in hosts]


BUILTIN = Registry()


def by_host(host: str) -> Provider | None:
    return BUILTIN.by_host(host)


def allow_hosts_patterns() -> list[str]:
    return BUILTIN.allow_hosts_patterns()


def host_pattern(host: str) -> str:
    """A regex for mitmproxy's ``allow_hosts``, which matches ``host:port`` strings."""
    if host.startswith("*."):
        return f"^([a-z0-9-]+\\.)+{re.escape(host[2:])}(:[0-9]+)?$"
    return f"^{re.escape(host)}(:[0-9]+)?$"


def custom_provider(
    *, name: str, base_url: str, hosts: tuple[str, ...], auth: str, wire_format: str
) -> Provider:
    """A provider an operator defined: OpenAI- or Anthropic-compatible, at ``base_url``."""
    styles = {"bearer": BEARER, "x-api-key": ANTHROPIC, "api-key": AZURE}
    if auth not in styles:
        raise ValueError(f"auth must be one of {', '.join(styles)}")
    if wire_format not in ("openai", "anthropic"):
        raise ValueError("format must be openai or anthropic")
    base_host = (urlsplit(base_url).hostname or "").lower()
    if not base_host:
        raise ValueError(f"not an http(s) base URL: {base_url!r}")
    return Provider(
        name=name,
        hosts=tuple(dict.fromkeys((base_host, *(h.lower() for h in hosts)))),
        default_base_url=base_url.rstrip("/"),
        auth=styles[auth],
        error_shape=wire_format,
        classify=openai_classify if wire_format == "openai" else anthropic_classify,
        key_rejected=compatible_key_rejected if wire_format == "openai" else anthropic_key_rejected,
        test_path="/models" if wire_format == "openai" else "/v1/models",
        test_headers=() if wire_format == "openai" else ANTHROPIC_VERSION,
    )
