"""Operator-defined providers (self-hosted vLLM, Ollama, other compatible APIs). Audited."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from addon.providers.registry import PROVIDERS, custom_provider
from addon.store.audit_repo import record_event
from addon.store.errors import Conflict, NotFound
from addon.store.models import CustomProvider, utcnow


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
