"""The built-in providers. Adding one is a few lines of data here (and a meter if its
wire format is not OpenAI's or Anthropic's)."""

from __future__ import annotations

import re

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


def _openai_compatible(
    name: str,
    host: str,
    base_url: str,
    *,
    stream_usage_opt_in: bool = True,
    alt_base_paths: tuple[str, ...] = (),
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
        ),
        _openai_compatible("mistral", "api.mistral.ai", "https://api.mistral.ai/v1"),
        _openai_compatible("groq", "api.groq.com", "https://api.groq.com/openai/v1"),
        _openai_compatible(
            "deepseek", "api.deepseek.com", "https://api.deepseek.com", alt_base_paths=("/v1",)
        ),
        _openai_compatible("xai", "api.x.ai", "https://api.x.ai/v1"),
        _openai_compatible(
            "openrouter", "openrouter.ai", "https://openrouter.ai/api/v1", stream_usage_opt_in=False
        ),
        _openai_compatible("together", "api.together.xyz", "https://api.together.xyz/v1"),
        _openai_compatible(
            "fireworks", "api.fireworks.ai", "https://api.fireworks.ai/inference/v1"
        ),
    )
}

_BY_HOST = {h: p for p in PROVIDERS.values() for h in p.hosts if not h.startswith("*.")}
_WILDCARD = [p for p in PROVIDERS.values() if any(h.startswith("*.") for h in p.hosts)]


def by_host(host: str) -> Provider | None:
    host = host.lower().rstrip(".")
    found = _BY_HOST.get(host)
    if found is not None:
        return found
    return next((p for p in _WILDCARD if p.matches_host(host)), None)


def host_pattern(host: str) -> str:
    """A regex for mitmproxy's ``allow_hosts``, which matches ``host:port`` strings."""
    if host.startswith("*."):
        return f"^([a-z0-9-]+\\.)+{re.escape(host[2:])}(:[0-9]+)?$"
    return f"^{re.escape(host)}(:[0-9]+)?$"


def allow_hosts_patterns() -> list[str]:
    """Regexes for mitmproxy's ``allow_hosts``: intercept provider hosts only."""
    hosts = sorted({h for p in PROVIDERS.values() for h in p.hosts})
    return [host_pattern(h) for h in hosts]
