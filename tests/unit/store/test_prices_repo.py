"""Price overrides in the database: set, list, delete, each audited (both databases)."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, col, select

from addon.store import prices_repo
from addon.store.errors import NotFound
from addon.store.models import AuditEvent


def actions(session: Session) -> list[tuple[str, str, str, dict[str, str]]]:
    rows = session.exec(select(AuditEvent).order_by(col(AuditEvent.id)))
    return [(e.actor, e.action, e.target, json.loads(e.details_json)) for e in rows]


def test_delete_removes_the_override_and_returns_its_prices(session: Session) -> None:
    prices = {"input": "1", "output": "2"}
    prices_repo.set_override(session=session, model="m1", prices=prices, actor="a")
    prices_repo.set_override(session=session, model="m2", prices=prices, actor="a")
    assert prices_repo.delete_override(session=session, model="m1", actor="b") == prices
    assert list(prices_repo.list_overrides(session=session)) == ["m2"]
    assert actions(session)[-1] == ("b", "price.unset", "m1", prices)


def test_deleting_a_missing_override_is_not_found_and_changes_nothing(session: Session) -> None:
    prices = {"input": "1", "output": "1"}
    prices_repo.set_override(session=session, model="Team/M", prices=prices, actor="a")
    hint = r"no price override for 'team/m' \(did you mean 'Team/M'\?\)"
    with pytest.raises(NotFound, match=hint):
        prices_repo.delete_override(session=session, model="team/m", actor="b")
    with pytest.raises(NotFound, match=r"^no price override for 'other'$"):
        prices_repo.delete_override(session=session, model="other", actor="b")
    assert list(prices_repo.list_overrides(session=session)) == ["Team/M"]
    assert [a[1] for a in actions(session)] == ["price.set"]
