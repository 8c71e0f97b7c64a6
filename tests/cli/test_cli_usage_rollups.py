"""``tollkeeper usage prune`` and ``usage rebuild``, and migration 0008 building the rollups."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import delete, func, select
from sqlmodel import Session

from addon.store import db as db_module
from addon.store import retention, rollups
from addon.store.models import AuditEvent, UsageRecord
from addon.store.usage_repo import USAGE_TABLE, as_dict, insert_records

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _records(n: int) -> list[UsageRecord]:
    return [
        UsageRecord(
            request_id=f"r{i}",
            created_at=T0 + timedelta(hours=5 * i, minutes=i),
            project="alpha" if i % 2 else "beta",
            provider="openai",
            model="gpt-4o",
            input_tokens=10 * i,
            cost_picousd=None if i % 3 == 0 else i,
        )
        for i in range(n)
    ]


def _count(store) -> int:
    with Session(store) as s:
        return int(s.execute(select(func.count()).select_from(UsageRecord)).scalar() or 0)


def _report(ok) -> str:
    return ok("usage", "--by", "day", "--json").stdout


def test_prune_asks_first_and_keeps_the_reports(ok, tk, store):
    with Session(store) as s:
        insert_records(session=s, records=_records(20))
    before = _report(ok)
    refused = tk("usage", "prune", "--before", "2025-01-02", input="n\n")
    assert refused.exit_code == 1 and _count(store) == 20
    done = ok("usage", "prune", "--before", "2025-01-02T03:30:00Z", input="y\n")
    assert "Delete 6 usage records created before 2025-01-02T03:00:00Z?" in done.stderr
    assert _count(store) == 14
    assert _report(ok) == before
    with Session(store) as s:
        event = s.execute(select(AuditEvent).where(AuditEvent.action == "usage.pruned")).one()[0]
    assert event.actor == "tester" and json.loads(event.details_json)["deleted"] == 6


def test_prune_with_yes_does_not_ask_and_says_how_many(ok, store):
    with Session(store) as s:
        insert_records(session=s, records=_records(10))
    out = json.loads(
        ok("usage", "prune", "--before", "2025-01-01T12:00:00Z", "--yes", "--json").stdout
    )
    assert out == {"before": "2025-01-01T12:00:00Z", "deleted": 3}
    nothing = ok("usage", "prune", "--before", "2025-01-01T12:00:00Z")  # nothing left: no prompt
    assert "Deleted 0 usage records" in nothing.stderr


def test_prune_refuses_stale_rollups_in_one_line(tk, store, one_line_error):
    rows = _records(6)
    with Session(store) as s:  # records written around the gateway: no rollups
        s.execute(USAGE_TABLE.insert(), [as_dict(r) for r in rows])
        s.commit()
    one_line_error(tk("usage", "prune", "--before", "2026-01-01", "--yes"), "usage rebuild")
    assert _count(store) == 6


def test_rebuild_builds_rollups_for_imported_records(ok, store):
    rows = _records(12)
    with Session(store) as s:
        s.execute(USAGE_TABLE.insert(), [as_dict(r) for r in rows])
        s.commit()
    assert json.loads(ok("usage", "--json").stdout) == []  # reports read the rollups
    out = json.loads(ok("usage", "rebuild", "--json").stdout)
    assert out == {"hours": 12, "records": 12, "kept_hours": 0}
    items = {i["project"]: i["requests"] for i in json.loads(ok("usage", "--json").stdout)}
    assert items == {"alpha": 6, "beta": 6}
    with Session(store) as s:
        assert retention.mismatched_hours(s) == []


def test_rebuild_says_which_hours_it_cannot_rebuild(ok, store):
    with Session(store) as s:
        insert_records(session=s, records=_records(10))
    ok("usage", "prune", "--before", "2025-01-01T12:00:00Z", "--yes")  # 3 hours pruned
    before = _report(ok)
    out = ok("usage", "rebuild")
    assert "Rebuilt the rollups of 7 hours from 7 records." in out.stderr
    assert "Kept 3 hours as they were" in out.stderr and "pruned" in out.stderr
    assert _report(ok) == before


def test_rebuild_rejects_an_empty_range(tk, one_line_error):
    result = tk("usage", "rebuild", "--since", "2025-01-02", "--until", "2025-01-01")
    one_line_error(result, "--since must be before --until")


def test_migration_0008_builds_the_rollups_of_an_existing_database(store):
    bare = UsageRecord(request_id="n", created_at=T0, provider="groq", model=None, project=None)
    rows = [*_records(15), bare]
    with Session(store) as s:
        s.execute(USAGE_TABLE.insert(), [as_dict(r) for r in rows])
        s.execute(delete(rollups.HOURLY))
        s.commit()
    cfg = db_module._alembic_config()
    with store.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, ScriptDirectory.from_config(cfg).get_revision("0008").down_revision)
        command.upgrade(cfg, "head")
    with Session(store) as s:
        assert retention.mismatched_hours(s) == []
        n = s.execute(select(func.sum(rollups.HOURLY.c.requests))).scalar()
        nulls = s.execute(
            select(rollups.HOURLY.c.null_dims).where(rollups.HOURLY.c.provider == "groq")
        ).scalar()
    assert n == 16 and nulls == 0b111  # key, project and model were NULL
