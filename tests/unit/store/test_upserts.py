"""An adding upsert creates a missing row, adds to an existing one, takes many rows at once,
and is built once per shape."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from addon.store.models import KeyDailySpend
from addon.store.upserts import upsert_adding

TABLE = KeyDailySpend.__table__  # type: ignore[attr-defined]
KEYS, ADDS = ("virtual_key_id", "day"), ("spent_picousd", "requests")


def spend(session: Session) -> dict[tuple[str, str], tuple[int, int]]:
    rows = session.execute(select(TABLE)).mappings()
    return {(r["virtual_key_id"], r["day"]): (r["spent_picousd"], r["requests"]) for r in rows}


def row(key: str, day: str, spent: int, requests: int) -> dict[str, object]:
    return {"virtual_key_id": key, "day": day, "spent_picousd": spent, "requests": requests}


def test_missing_rows_are_created_and_existing_ones_added_to(session: Session) -> None:
    stmt = upsert_adding(session.get_bind().dialect.name, TABLE, KEYS, ADDS)
    session.execute(stmt, [row("k1", "2026-03-01", 10**15, 1), row("k2", "2026-03-01", 5, 1)])
    session.execute(stmt, [row("k1", "2026-03-01", 10**15, 2)])
    session.commit()
    assert spend(session) == {
        ("k1", "2026-03-01"): (2 * 10**15, 3),
        ("k2", "2026-03-01"): (5, 1),
    }


def test_a_shape_is_built_once(session: Session) -> None:
    dialect = session.get_bind().dialect.name
    assert upsert_adding(dialect, TABLE, KEYS, ADDS) is upsert_adding(dialect, TABLE, KEYS, ADDS)
    assert upsert_adding(dialect, TABLE, KEYS, ADDS[:1]) is not upsert_adding(
        dialect, TABLE, KEYS, ADDS
    )
