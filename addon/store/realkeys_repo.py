"""Real provider keys: a pool per provider, stored encrypted (or as an env reference)."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select, update

from addon.store.audit_repo import record_event
from addon.store.errors import Conflict, NotFound
from addon.store.models import RealKey, utcnow
from addon.vault import Vault, last4


def add_real_key(
    *,
    session: Session,
    vault: Vault,
    provider: str,
    label: str,
    secret: str | None,
    env_ref: str | None,
    base_url: str | None,
    actor: str,
    model_map: dict[str, str] | None = None,
) -> RealKey:
    """Store a real key: encrypted when ``secret`` is given, else as a reference to ``env_ref``."""
    if (secret is None) == (env_ref is None):
        raise ValueError("give exactly one of secret or env_ref")
    row = RealKey(
        provider=provider,
        label=label,
        base_url=base_url,
        ciphertext=vault.encrypt(secret) if secret is not None else None,
        env_ref=env_ref,
        last4=last4(secret) if secret is not None else "$env",
        model_map_json=json.dumps(model_map or {}, sort_keys=True),
    )
    session.add(row)
    record_event(
        session=session,
        actor=actor,
        action="real_key.added",
        target=f"{provider}/{label}",
        details={
            "base_url": base_url or "",
            "stored_as": "env_ref" if env_ref else "encrypted",
            "model_map": model_map or {},
        },
    )
    try:
        session.commit()
    except IntegrityError as e:
        session.rollback()
        raise Conflict(f"provider {provider} already has a key labelled {label!r}") from e
    session.refresh(row)
    return row


def list_real_keys(*, session: Session, provider: str | None = None) -> list[RealKey]:
    stmt = select(RealKey).order_by(col(RealKey.provider), col(RealKey.label))
    if provider is not None:
        stmt = stmt.where(RealKey.provider == provider)
    return list(session.exec(stmt))


def remove_real_key(*, session: Session, provider: str, label: str, actor: str) -> None:
    row = session.exec(
        select(RealKey).where(RealKey.provider == provider, RealKey.label == label)
    ).first()
    if row is None:
        raise NotFound(f"no {provider} key labelled {label!r}")
    session.delete(row)
    record_event(
        session=session, actor=actor, action="real_key.removed", target=f"{provider}/{label}"
    )
    session.commit()


def record_health(
    *,
    session: Session,
    key_id: int,
    status: str,
    cooldown_until: datetime | None,
    auth_failures: int,
    last_error: str | None,
    observed_at: datetime | None = None,
) -> None:
    """Persist a key's health as the gateway saw it at ``observed_at`` (called from the
    writer thread, up to a flush interval later). A row written after that moment (an
    operator's ``enable``, another gateway's view) is newer news and stays, as
    ``Pool.health`` prefers it too. One conditional UPDATE: an ``enable`` committed between
    a read and a write here would otherwise be overwritten."""
    newer_stays = [] if observed_at is None else [col(RealKey.updated_at) <= observed_at]
    session.exec(
        update(RealKey)
        .where(col(RealKey.id) == key_id, *newer_stays)
        .values(
            status=status,
            cooldown_until=cooldown_until,
            consecutive_auth_failures=auth_failures,
            last_error=last_error,
            updated_at=utcnow(),
        )
    )
    session.commit()


def enable_real_key(*, session: Session, provider: str, label: str, actor: str) -> RealKey:
    """Bring a cooling or disabled key back into its pool now (audited). Running gateways
    see it at their next refresh: the row's ``updated_at`` is newer than what they saw.

    Every health column is written, whatever was read: a rejection the gateway's writer
    commits between the read and this write would otherwise keep its status (the ORM
    writes only the columns it saw change). PostgreSQL also locks the row for the audit's
    "before"."""
    row = session.exec(
        select(RealKey)
        .where(RealKey.provider == provider, RealKey.label == label)
        .with_for_update()
    ).first()
    if row is None:
        raise NotFound(f"no {provider} key labelled {label!r}")
    before = {"status": row.status, "consecutive_auth_failures": row.consecutive_auth_failures}
    session.exec(
        update(RealKey)
        .where(col(RealKey.id) == row.id)
        .values(
            status="healthy", cooldown_until=None, consecutive_auth_failures=0, updated_at=utcnow()
        )
    )
    record_event(
        session=session,
        actor=actor,
        action="real_key.enabled",
        target=f"{provider}/{label}",
        details={**before, "last_error": row.last_error or ""},
    )
    session.commit()
    session.refresh(row)
    return row
