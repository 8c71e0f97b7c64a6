"""The built-in providers, one module each; adding one is a module and a line here."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from addon.providers import (
    anthropic,
    azure,
    deepseek,
    fireworks,
    gemini,
    groq,
    mistral,
    openai,
    openrouter,
    together,
    xai,
)
from addon.providers.anthropic_style import ANTHROPIC_STYLE, VERSION_HEADERS, anthropic_key_rejected
from addon.providers.base import ANTHROPIC, AZURE, BEARER, Provider
from addon.providers.key_health import compatible_key_rejected
from addon.providers.openai_style import OPENAI_STYLE
from addon.providers.wire_format import WireFormat

PROVIDERS: dict[str, Provider] = {
    m.PROVIDER.name: m.PROVIDER
    for m in (
        openai,
        anthropic,
        gemini,
        azure,
        mistral,
        groq,
        deepseek,
        xai,
        openrouter,
        together,
        fireworks,
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


# the wire formats an operator-defined provider may speak, by name (the first is the default)
CUSTOM_FORMATS: dict[str, WireFormat] = {
    OPENAI_STYLE.prefix: OPENAI_STYLE,
    ANTHROPIC_STYLE.prefix: ANTHROPIC_STYLE,
}


def custom_provider(
    *, name: str, base_url: str, hosts: tuple[str, ...], auth: str, wire_format: str
) -> Provider:
    """A provider an operator defined: OpenAI- or Anthropic-compatible, at ``base_url``."""
    styles = {"bearer": BEARER, "x-api-key": ANTHROPIC, "api-key": AZURE}
    if auth not in styles:
        raise ValueError(f"auth must be one of {', '.join(styles)}")
    if wire_format not in CUSTOM_FORMATS:
        raise ValueError(f"format must be {' or '.join(CUSTOM_FORMATS)}")
    base_host = (urlsplit(base_url).hostname or "").lower()
    if not base_host:
        raise ValueError(f"not an http(s) base URL: {base_url!r}")
    wire = CUSTOM_FORMATS[wire_format]
    openai_like = wire is OPENAI_STYLE
    return Provider(
        name=name,
        hosts=tuple(dict.fromkeys((base_host, *(h.lower() for h in hosts)))),
        default_base_url=base_url.rstrip("/"),
        auth=styles[auth],
        wire=wire,
        key_rejected=compatible_key_rejected if openai_like else anthropic_key_rejected,
        test_path="/models" if openai_like else "/v1/models",
        test_headers=() if openai_like else VERSION_HEADERS,
    )
