"""Who is calling: the presented credential, and whether its key may make this request.

Pure functions over plain values; the hooks feed them headers and the key snapshot.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from fnmatch import fnmatchcase

from addon import keys
from addon.errors import InvalidKey, NotAllowed
from addon.keycache import KeyInfo
from addon.providers.base import Provider

CREDENTIAL_HEADERS = ("authorization", "x-api-key", "api-key", "x-goog-api-key")
CREDENTIAL_PARAMS = ("key", "api_key", "api-key", "apikey", "access_token")
_VIRTUAL_KEY_IN = re.compile(r"tk-[a-z0-9]{10}-[0-9a-f]{40}")


def presented_credential(
    provider: Provider, headers: Mapping[str, str], query: Mapping[str, str] | None = None
) -> str | None:
    """The key the client sent: in the provider's own header, as ``Authorization: Bearer``,
    or (Gemini) as a query parameter."""
    style = provider.auth
    auth = headers.get("authorization", "")
    bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
    if style.bearer:
        return bearer or None
    own = headers.get(style.header, "").strip()
    from_query = (query or {}).get(style.query_param, "") if style.query_param else ""
    return own or bearer or from_query.strip() or None


def credential_headers(provider: Provider, headers: Iterable[tuple[str, str]]) -> list[str]:
    """Names of the request headers to drop before forwarding, for every provider: every
    auth location, the provider's own extras, and any header carrying a virtual key."""
    drop = {*CREDENTIAL_HEADERS, *provider.strip_headers}
    return sorted(
        {name.lower() for name, value in headers if name.lower() in drop or carries_key(value)}
    )


def credential_params(query: Iterable[tuple[str, str]]) -> list[str]:
    """Names of the query parameters to drop: every auth parameter (``?key=`` and its
    kin, whatever the provider) and any parameter carrying a virtual or provider key."""
    names = {
        name
        for name, value in query
        if name.lower() in CREDENTIAL_PARAMS
        or carries_key(value)
        or keys.looks_like_provider_key(value)
    }
    return sorted(names)


def carries_key(value: str) -> bool:
    return "tk-" in value and _VIRTUAL_KEY_IN.search(value) is not None


def key_id_of(presented: str | None) -> str:
    if not presented:
        raise InvalidKey("Missing API key: send your tollkeeper virtual key as the API key.")
    try:
        return keys.parse_key(presented)
    except keys.MalformedKey:
        if keys.looks_like_provider_key(presented):
            raise InvalidKey(
                "A provider API key was sent to the tollkeeper gateway; use a virtual key."
            ) from None
        raise InvalidKey("Incorrect API key provided: not a tollkeeper virtual key.") from None


def check_key(presented: str, info: KeyInfo | None, provider: str, now: datetime) -> KeyInfo:
    if info is None or not keys.matches(presented, info.secret_hash):
        raise InvalidKey("Incorrect API key provided: unknown tollkeeper virtual key.")
    if info.revoked:
        raise InvalidKey(f"The virtual key {info.id} has been revoked.")
    if info.expires_at is not None and info.expires_at <= now:
        raise InvalidKey(f"The virtual key {info.id} has expired.")
    if info.allowed_providers and provider not in info.allowed_providers:
        raise NotAllowed(f"The virtual key {info.id} may not use provider {provider}.")
    return info


def check_model(info: KeyInfo, model: str | None) -> None:
    if not info.allowed_models:
        return
    if model is None or not any(fnmatchcase(model, pat) for pat in info.allowed_models):
        raise NotAllowed(f"The virtual key {info.id} may not use model {model or '(none)'}.")
