"""Virtual keys: create, list, show, revoke, rotate, update. Each change is audited."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from addon import keys
from addon.alerts import format_thresholds
from addon.store.audit_repo import record_event
from addon.store.errors import Conflict, NotFound
from addon.store.key_policy import BUDGET_PERIODS, KeyPolicy, is_active, policy_of
from addon.store.models import VirtualKey, utcnow

__all__ = [
    "BUDGET_PERIODS",
    "AlertsWithoutBudget",
    "KeyPolicy",
    "create_key",
    "get_key",
    "is_active",
    "list_keys",
    "policy_of",
    "revoke_key",
    "rotate_key",
    "update_key",
]


class AlertsWithoutBudget(ValueError):
    """Alert thresholds are percentages of a budget: a key without one cannot have them."""


def _apply_policy(row: VirtualKey, policy: KeyPolicy) -> None:
    if policy.budget_period not in BUDGET_PERIODS:
        raise ValueError(f"budget period must be one of {', '.join(BUDGET_PERIODS)}")
    if policy.alert_at and policy.budget_picousd is None:
        raise AlertsWithoutBudget(
            "--alert-at needs a budget: give the key one with --budget"
            " (or remove the alerts with --alert-at none)"
        )
    row.expires_at = policy.expires_at
    row.allowed_providers = ",".join(policy.allowed_providers)
    row.allowed_models = ",".join(policy.allowed_models)
    row.budget_picousd = policy.budget_picousd
    row.budget_period = policy.budget_period
    row.rpm = policy.rpm
    row.tpm = policy.tpm
    row.max_parallel = policy.max_parallel
    row.allow_unmetered = policy.allow_unmetered
    row.metadata_json = json.dumps(policy.metadata or {})
    row.alert_at = format_thresholds(policy.alert_at)


def create_key(
    *, session: Session, project: str, policy: KeyPolicy, actor: str
) -> tuple[VirtualKey, str]:
    """Create a key; return the row and the full secret key (shown once, never stored)."""
    if not project.strip():
        raise ValueError("project must not be empty")
    for _ in range(5):
        key_id = keys.new_key_id()
        full = keys.format_key(key_id, keys.new_secret())
        row = VirtualKey(
            id=key_id, project=project, secret_hash=keys.hash_key(full), created_by=actor
        )
        _apply_policy(row, policy)
        session.add(row)
        record_event(
            session=session,
            actor=actor,
            action="key.created",
            target=key_id,
            details={"project": project},
        )
        try:
            session.commit()
        except IntegrityError:  # key id collision: astronomically rare, retry
            session.rollback()
            continue
        session.refresh(row)
        return row, full
    raise Conflict("could not allocate a unique key id")


def get_key(*, session: Session, key_id: str) -> VirtualKey:
    row = session.get(VirtualKey, key_id, populate_existing=True)
    if row is None:
        raise NotFound(f"no virtual key with id {key_id!r}")
    return row


def list_keys(*, session: Session, include_inactive: bool = False) -> list[VirtualKey]:
    rows = list(session.exec(select(VirtualKey).order_by(col(VirtualKey.created_at))))
    if include_inactive:
        return rows
    now = utcnow()
    return [r for r in rows if is_active(r, now)]


def _lock_row(session: Session, key_id: str) -> None:
    """Take the row's write lock first (PostgreSQL row lock; SQLite's write lock), so that
    a read-modify-write below cannot interleave with another process's."""
    session.execute(update(VirtualKey).where(col(VirtualKey.id) == key_id).values(id=key_id))


def revoke_key(*, session: Session, key_id: str, actor: str, reason: str | None) -> VirtualKey:
    _lock_row(session, key_id)
    row = get_key(session=session, key_id=key_id)
    if row.revoked_at is not None:
        session.rollback()
        raise Conflict(f"key {key_id} is already revoked")
    now = utcnow()
    row.revoked_at, row.revoked_by, row.revoke_reason, row.updated_at = now, actor, reason, now
    session.add(row)
    record_event(
        session=session,
        actor=actor,
        action="key.revoked",
        target=key_id,
        details={"reason": reason or ""},
    )
    session.commit()
    session.refresh(row)
    return row


def rotate_key(*, session: Session, key_id: str, actor: str) -> tuple[VirtualKey, str]:
    """New secret, same id, policy and history; the old secret stops working."""
    _lock_row(session, key_id)
    row = get_key(session=session, key_id=key_id)
    if row.revoked_at is not None:
        session.rollback()
        raise Conflict(f"key {key_id} is revoked; create a new one")
    full = keys.format_key(key_id, keys.new_secret())
    row.secret_hash, row.updated_at = keys.hash_key(full), utcnow()
    session.add(row)
    record_event(session=session, actor=actor, action="key.rotated", target=key_id)
    session.commit()
    session.refresh(row)
    return row, full


def update_key(*, session: Session, key_id: str, changes: dict[str, Any], actor: str) -> VirtualKey:
    """Apply policy changes (field name → new value) to a live key."""
    _lock_row(session, key_id)
    row = get_key(session=session, key_id=key_id)
    current = policy_of(row)
    merged = KeyPolicy(**{**current.__dict__, **changes})
    _apply_policy(row, merged)
    row.updated_at = utcnow()
    session.add(row)
    record_event(
        session=session,
        actor=actor,
        action="key.updated",
        target=key_id,
        details={k: _jsonable(v) for k, v in changes.items()},
    )
    session.commit()
    session.refresh(row)
    return row


def _jsonable(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, tuple):
        return list(v)
    return v
