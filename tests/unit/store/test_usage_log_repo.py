"""The per-request log: newest first, filtered, limited (both databases)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from addon.store import usage_log_repo, usage_repo
from addon.store.models import UsageRecord
from addon.store.usage_log_repo import LogFilter

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def rec(n: int, **fields: Any) -> UsageRecord:
    base: dict[str, Any] = {
        "request_id": f"r{n:03d}-{uuid.uuid4().hex[:8]}",
        "created_at": T0 + timedelta(minutes=n),
        "provider": "openai",
        "project": "alpha",
        "virtual_key_id": "key0000001",
        "model": "gpt-4o-mini",
        "status_code": 200,
    }
    base.update(fields)
    return UsageRecord(**base)


def logged(session: Session, limit: int = 50, **where: Any) -> list[int]:
    rows = usage_log_repo.request_log(session=session, where=LogFilter(**where), limit=limit)
    return [int(r.request_id[1:4]) for r in rows]


def store(session: Session, *records: UsageRecord) -> None:
    usage_repo.insert_records(session=session, records=list(records))


def test_newest_first_up_to_the_limit(session: Session) -> None:
    store(session, *(rec(n) for n in range(5)))
    assert logged(session) == [4, 3, 2, 1, 0]
    assert logged(session, limit=2) == [4, 3]


def test_records_of_the_same_moment_come_last_stored_first(session: Session) -> None:
    store(session, rec(1, created_at=T0), rec(2, created_at=T0), rec(3, created_at=T0))
    assert logged(session) == [3, 2, 1]


def test_filters_by_project_key_period_and_status(session: Session) -> None:
    store(
        session,
        rec(0),
        rec(1, project="beta"),
        rec(2, virtual_key_id="key0000002"),
        rec(3, status_code=429),
        rec(4, status_code=None, error_kind="client_disconnected"),
        rec(5, status_code=200, error_kind="stream_error:overloaded_error"),
    )
    assert logged(session, project="beta") == [1]
    assert logged(session, key_id="key0000002") == [2]
    assert logged(session, status=429) == [3]
    assert logged(session, status="error") == [5, 4, 3]
    since, until = T0 + timedelta(minutes=1), T0 + timedelta(minutes=3)
    assert logged(session, since=since, until=until) == [2, 1]


def test_a_model_glob_is_exact_and_case_insensitive_and_the_limit_counts_matches(
    session: Session,
) -> None:
    # LIKE narrows "gpt-4[o]*" to "gpt-4_%", which also takes gpt-4.1: fnmatch drops those
    others = [rec(n, model="gpt-4.1") for n in range(10, 260)]
    store(session, rec(1, model="GPT-4o"), rec(2, model="gpt-4o-mini"), *others, rec(300))
    assert logged(session, model_glob="gpt-4[o]*", limit=2) == [300, 2]
    assert logged(session, model_glob="gpt-4[o]*") == [300, 2, 1]
    assert logged(session, model_glob="claude-*") == []
    assert len(logged(session, model_glob="gpt-4.1", limit=300)) == 250
