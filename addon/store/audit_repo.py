"""Audit events: every admin change, with time, actor and target; never a secret."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from addon.store.models import AuditEvent


def record_event(
    *, session: Session, actor: str, action: str, target: str, details: dict[str, Any] | None = None
) -> None:
    """Add an audit event to the caller's transaction (committed with the change itself)."""
    session.add(
        AuditEvent(
            actor=actor, action=action, target=target, details_json=json.dumps(details or {})
        )
    )


def list_events(*, session: Session, since: datetime | None = None) -> list[AuditEvent]:
    stmt = select(AuditEvent).order_by(col(AuditEvent.at), col(AuditEvent.id))
    if since is not None:
        stmt = stmt.where(col(AuditEvent.at) >= since)
    return list(session.exec(stmt))
