"""Operator-defined providers (self-hosted vLLM, Ollama, other compatible APIs). Audited."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

import publicsuffix2
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from addon.providers.base import Provider
from addon.providers.registry import BUILTIN, PROVIDERS, custom_provider
from addon.store.audit_repo import record_event
from addon.store.errors import Conflict, NotFound
from addon.store.models import CustomProvider, utcnow

log = logging.getLogger(__name__)


def as_providers(rows: Iterable[CustomProvider]) -> tuple[Provider, ...]:
    """Defined providers; a row that no longer makes sense is skipped, never fatal."""
    out = []
    for row in rows:
        hosts = tuple(h.strip() for h in row.hosts.split(",") if h.strip())
        try:
            out.append(
                custom_provider(
                    name=row.name,
                    base_url=row.base_url,
                    hosts=hosts,
                    auth=row.auth,
                    wire_format=row.wire_format,
                )
            )
        except ValueError as e:
            log.warning("tollkeeper: ignoring custom provider %s: %s", row.name, e)
    return tuple(out)


def define_provider(
    *,
    session: Session,
    name: str,
    base_url: str,
    hosts: tuple[str, ...],
    auth: str,
    wire_format: str,
    actor: str,
) -> CustomProvider:
    if name in PROVIDERS:
        raise Conflict(f"{name} is a built-in provider")
    check_hosts(((urlsplit(base_url).hostname or "").lower(), *hosts))
    custom_provider(name=name, base_url=base_url, hosts=hosts, auth=auth, wire_format=wire_format)
    row = CustomProvider(
        name=name, base_url=base_url, hosts=",".join(hosts), auth=auth, wire_format=wire_format
    )
    session.add(row)
    record_event(
        session=session,
        actor=actor,
        action="provider.defined",
        target=name,
        details={"base_url": base_url, "hosts": list(hosts), "auth": auth, "format": wire_format},
    )
    try:
        session.commit()
    except IntegrityError as e:
        session.rollback()
        raise Conflict(f"provider {name} is already defined") from e
    session.refresh(row)
    return row


_HOST_RE = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
_BUILTIN_HOSTS = tuple(h for p in PROVIDERS.values() for h in p.hosts)


def check_hosts(hosts: Iterable[str]) -> None:
    """Refuse hosts that would take over a built-in provider's traffic, and wildcards
    wider than one registrable domain (``*.com``, ``*.co.uk``, ``*.github.io``); raises
    ``ValueError`` with a message for the operator."""
    for host in hosts:
        if not host:
            continue
        if not _HOST_RE.match(host):
            raise ValueError(f"{host!r} is not a host name (a wildcard is only a leading '*.')")
        if host.startswith("*."):
            _check_wildcard(host[2:])
        elif BUILTIN.by_host(host) is not None:
            owner = BUILTIN.by_host(host)
            raise Conflict(f"{host} belongs to the built-in provider {owner.name if owner else ''}")


def _check_wildcard(domain: str) -> None:
    if domain.replace(".", "").isdigit() or publicsuffix2.get_tld(domain) == domain:
        raise ValueError(f"*.{domain} is wider than one registrable domain")
    covered = [
        h
        for h in _BUILTIN_HOSTS
        if h.endswith("." + domain)
        or h[2:] == domain
        or (h.startswith("*.") and domain.endswith(h[1:]))
    ]
    if covered or BUILTIN.by_host("x." + domain) is not None:
        raise Conflict(
            f"*.{domain} overlaps built-in provider hosts ({', '.join(covered) or domain})"
        )


def list_custom(*, session: Session) -> list[CustomProvider]:
    return list(session.exec(select(CustomProvider).order_by(col(CustomProvider.name))))


def remove_custom(*, session: Session, name: str, actor: str) -> None:
    row = session.get(CustomProvider, name)
    if row is None:
        raise NotFound(f"no custom provider named {name!r}")
    row.updated_at = utcnow()
    session.delete(row)
    record_event(session=session, actor=actor, action="provider.undefined", target=name)
    session.commit()
