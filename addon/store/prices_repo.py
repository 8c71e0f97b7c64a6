"""Price overrides kept in the database; they win over the bundled table."""

from __future__ import annotations

import json

from sqlmodel import Session, col, select

from addon.store.audit_repo import record_event
from addon.store.models import PriceOverride, utcnow


def set_override(*, session: Session, model: str, prices: dict[str, str], actor: str) -> None:
    row = session.get(PriceOverride, model) or PriceOverride(model=model, prices_json="{}")
    row.prices_json, row.updated_at = json.dumps(prices, sort_keys=True), utcnow()
    session.add(row)
    record_event(session=session, actor=actor, action="price.set", target=model, details=prices)
    session.commit()


def list_overrides(*, session: Session) -> dict[str, dict[str, str]]:
    rows = session.exec(select(PriceOverride).order_by(col(PriceOverride.model)))
    return {r.model: json.loads(r.prices_json) for r in rows}
