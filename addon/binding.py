"""Which real keys may serve a request: a key goes only to the destination configured for it.

Providers with a fixed upstream send every request to the key's base URL (or the
provider's default); nothing to choose. Providers without one (Azure: one resource per
key) bind each key to the resource of its required ``--base-url``:

- a base URL on a resource host (``https://myres.openai.azure.com``) binds the key to that
  resource: it serves only requests that name it, and goes only to that URL (its scheme
  and port, never plain HTTP);
- a base URL elsewhere (a private endpoint, an API gateway, a test double) names no
  resource: the key serves requests for any resource and goes only to its base URL.

A request for a resource no key is bound to (while keys bound to other resources exist)
is refused; a key without a base URL is never used for such a provider.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from addon.errors import NotAllowed
from addon.keycache import RealKeyInfo
from addon.providers.base import Provider


def resource_of(provider: Provider, base_url: str) -> str | None:
    """The resource host a key's base URL binds it to, or None (not a resource host)."""
    host = (urlsplit(base_url).hostname or "").lower()
    return host if host and provider.matches_host(host) else None


def bound_keys(
    provider: Provider, pool: Sequence[RealKeyInfo], host: str
) -> tuple[RealKeyInfo, ...]:
    """The keys of ``pool`` that may serve a request for ``host``; raises ``NotAllowed``
    when keys exist but none is bound to that resource."""
    if not provider.keeps_destination or not pool:
        return tuple(pool)
    host = host.lower().rstrip(".")
    usable = [k for k in pool if k.base_url]
    exact = [k for k in usable if resource_of(provider, k.base_url or "") == host]
    chosen = exact or [k for k in usable if resource_of(provider, k.base_url or "") is None]
    if not chosen:
        raise NotAllowed(
            f"No {provider.name} key is configured for the resource {host}; "
            "the gateway sends each key only to its own resource."
        )
    return tuple(chosen)


def destination_problem(provider: Provider | None, base_url: str | None) -> str | None:
    """Why a real key with this base URL may not be added (None: it may)."""
    if provider is None or not provider.keeps_destination:
        return None
    example = f"https://<resource>.{provider.hosts[0].removeprefix('*.')}"
    if not base_url:
        return (
            f"{provider.name} keys need --base-url (e.g. {example}): "
            "each key is sent only to its own resource"
        )
    if resource_of(provider, base_url) and urlsplit(base_url).scheme != "https":
        return f"--base-url for a {provider.name} resource must be https:// ({example})"
    return None
