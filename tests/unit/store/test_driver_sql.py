"""The writer's driver SQL stores what SQLAlchemy would: the same values read back, the same
stored text on SQLite, SQLAlchemy's errors; one parameter for any number of ids."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlmodel import Session

from addon.store import driver_sql
from addon.store.db import open_store
from addon.store.models import UsageRecord
from addon.store.rows import COLUMNS, UsageRow, as_dict

TABLE = UsageRecord.__table__  # type: ignore[attr-defined]
INSERT = insert(TABLE).inline()
T0 = datetime(2026, 3, 1, 23, 59, 59, 999_999, tzinfo=UTC)


def row(**fields: Any) -> UsageRow:
    base: dict[str, Any] = dict.fromkeys(COLUMNS)
    base.update(
        request_id=uuid.uuid4().hex,
        created_at=T0,
        provider="openai",
        endpoint="/v1/chat/completions",
        input_tokens=2**31 - 1,
        cached_input_tokens=0,
        cache_write_tokens=0,
        output_tokens=7,
        reasoning_tokens=0,
        streamed=True,
        estimated=False,
        extras_json='{"a": "é"}',
        tags="a,b",
    )
    base.update(fields)
    return UsageRow(**base)


def stored(session: Session, request_id: str) -> dict[str, Any]:
    got = session.execute(select(TABLE).where(TABLE.c.request_id == request_id)).mappings().one()
    return {c: got[c] for c in COLUMNS}


def test_rows_read_back_as_a_core_insert_stores_them(session: Session) -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    mine = row(created_at=T0.astimezone(india), cost_picousd=10**16, project=None, model="")
    core = row(created_at=T0, cost_picousd=10**16, project=None, model="")
    driver_sql.run_many(session, INSERT, [as_dict(mine)])
    session.execute(INSERT, [as_dict(core)])
    session.commit()
    a, b = stored(session, mine.request_id), stored(session, core.request_id)
    assert a.pop("request_id") != b.pop("request_id")
    assert a == b
    assert a["created_at"] == T0 and a["streamed"] is True and a["estimated"] is False


@pytest.fixture
def sqlite_session(sqlite_url: str) -> Iterator[Session]:
    engine = open_store(sqlite_url)
    with Session(engine) as s:
        yield s
    engine.dispose()


def test_sqlite_stores_the_text_sqlalchemy_stores(sqlite_session: Session) -> None:
    s = sqlite_session
    mine, core = row(), row()
    driver_sql.run_many(s, INSERT, [as_dict(mine)])
    s.execute(INSERT, [as_dict(core)])
    s.commit()
    raw = s.execute(
        text("SELECT request_id, created_at FROM usage_records WHERE request_id IN (:a, :b)"),
        {"a": mine.request_id, "b": core.request_id},
    )
    times = dict(raw.all())
    assert times[mine.request_id] == times[core.request_id] == "2026-03-01 23:59:59.999999"


def test_a_time_without_a_zone_is_refused_as_sqlalchemy_refuses_it(session: Session) -> None:
    bad = as_dict(row(created_at=datetime(2026, 3, 1)))
    with pytest.raises(ValueError, match="timezone"):
        driver_sql.run_many(session, INSERT, [bad])
    with pytest.raises(StatementError, match="timezone"):
        session.execute(INSERT, [bad])


def test_a_duplicate_is_sqlalchemys_integrity_error(session: Session) -> None:
    first = row()
    driver_sql.run_many(session, INSERT, [as_dict(first)])
    with pytest.raises(IntegrityError):
        driver_sql.run_many(session, INSERT, [as_dict(row(request_id=first.request_id))])
    session.rollback()


@pytest.mark.parametrize("count", [0, 1, 1500])
def test_one_parameter_matches_any_number_of_ids(session: Session, count: int) -> None:
    rows = [row() for _ in range(count)]
    driver_sql.run_many(session, INSERT, [as_dict(r) for r in rows])
    session.commit()
    ids = [r.request_id for r in rows] + ["not-stored"]
    sql = "SELECT request_id FROM {table} WHERE {where}"
    found = driver_sql.matching(session, sql, TABLE, "request_id", ids)
    assert sorted(r[0] for r in found) == sorted(r.request_id for r in rows)
    deleted = driver_sql.matching(
        session, "DELETE FROM {table} WHERE {where}", TABLE, "request_id", ids
    )
    assert deleted.rowcount == count


def test_a_statement_is_compiled_once_per_kind_of_dialect(session: Session) -> None:
    dialect = session.get_bind().dialect
    columns = tuple(COLUMNS)
    assert driver_sql.compiled(dialect, INSERT, columns) is driver_sql.compiled(
        dialect, INSERT, columns
    )
    c = driver_sql.compiled(dialect, INSERT, columns)
    assert "INSERT INTO usage_records" in c.sql and " id," not in c.sql
    assert c.times == ("created_at",)
    assert " RETURNING " not in c.sql  # nothing reads the ids back
