"""The built-in providers. Adding one is a few lines of data here (and a meter if its
wire format is not OpenAI's or Anthropic's)."""

from __future__ import annotations

import re

from addon.providers.base import (
    ANTHROPIC,
    BEARER,
    Provider,
    anthropic_classify,
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

_BY_HOST = {host: p for p in PROVIDERS.values() for host in p.hosts}


def by_host(host: str) -> Provider | None:
    return _BY_HOST.get(host.lower().rstrip("."))


def allow_hosts_patterns() -> list[str]:
    """Regexes for mitmproxy's ``allow_hosts``: intercept provider hosts only.

    mitmproxy matches them against ``host:port`` strings, hence the optional port.
    """
    return [f"^{re.escape(h)}(:[0-9]+)?$" for h in sorted(_BY_HOST)]
