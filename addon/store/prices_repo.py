"""Price overrides kept in the database; they win over the bundled table."""

from __future__ import annotations

import json

from sqlalchemy import delete
from sqlmodel import Session, col, select

from addon.store.audit_repo import record_event
from addon.store.errors import NotFound
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


def delete_override(*, session: Session, model: str, actor: str) -> dict[str, str]:
    """Remove the override of ``model`` (its exact name); the prices it had. NotFound if none."""
    stmt = (
        delete(PriceOverride)
        .where(col(PriceOverride.model) == model)
        .returning(col(PriceOverride.prices_json))
    )
    removed = session.execute(stmt).scalar_one_or_none()
    if removed is None:
        session.rollback()
        raise NotFound(_not_found(session, model))
    prices: dict[str, str] = json.loads(removed)
    record_event(session=session, actor=actor, action="price.unset", target=model, details=prices)
    session.commit()
    return prices


def _not_found(session: Session, model: str) -> str:
    names = [m for m in session.exec(select(PriceOverride.model)) if m.lower() == model.lower()]
    hint = f" (did you mean {names[0]!r}?)" if names else ""
    return f"no price override for {model!r}{hint}"
