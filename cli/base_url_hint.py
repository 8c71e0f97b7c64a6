"""The warning ``providers add`` gives for an OpenAI-style ``--base-url`` without a path.

The gateway replaces the provider's own base path (``/v1`` for OpenAI, ``/openai/v1`` for
Groq, …) with the key's: a key at ``http://host:8000`` sends ``/v1/chat/completions`` to
``http://host:8000/chat/completions``, which most OpenAI-compatible servers answer 404.
Anthropic and Gemini have no base path, so a bare host is right for them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlmodel import Session

from addon.providers.openai_style import OPENAI_STYLE
from addon.providers.registry import PROVIDERS
from addon.store import custom_providers_repo
from cli.output import note


def warn_if_no_path(session: Session, name: str, base_url: str | None) -> None:
    """Warn on stderr (the key is still added) when an OpenAI-style base URL lacks its path."""
    if base_url is None:
        return
    if (warning := missing_path_warning(openai_style_base(session, name), base_url)) is not None:
        note(warning)


def openai_style_base(session: Session, name: str) -> str:
    """The default base URL of provider ``name`` if it speaks OpenAI's wire format, else ""."""
    if name in PROVIDERS:
        provider = PROVIDERS[name]
        return provider.default_base_url if provider.wire is OPENAI_STYLE else ""
    for row in custom_providers_repo.list_custom(session=session):
        if row.name == name and row.wire_format == OPENAI_STYLE.prefix:
            return row.base_url
    return ""


def missing_path_warning(default_base_url: str, base_url: str) -> str | None:
    """One line when ``base_url`` has no path but the provider's default base has one."""
    base_path = urlsplit(default_base_url).path.rstrip("/")
    if not base_path or urlsplit(base_url).path.strip("/"):
        return None
    bare = base_url.rstrip("/")
    return (
        f"Warning: --base-url {base_url} has no path, so {base_path}/chat/completions goes to "
        f"{bare}/chat/completions; OpenAI-style base URLs end in the API path, "
        f"e.g. {bare}{base_path}"
    )
