"""The quick usage report equals the store's, group for group, on both databases; whenever it
cannot be sure it leaves the report to the full path."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlmodel import Session
from usagerows import R0, SPAN_S, T0, clear, insert, moments, rec, records_st

from addon.store import quick_report, retention, usage_repo
from addon.store.db import open_store
from addon.store.report_fields import MEASURE_NAMES, ROLLUP_GROUPS

ROOT = Path(__file__).resolve().parents[3]
IST = timezone(timedelta(hours=5, minutes=30))


@pytest.fixture
def engine(db_url: str) -> Iterator[Any]:
    eng = open_store(db_url)
    yield eng
    eng.dispose()


def full_path(session: Session, **query: Any) -> list[dict[str, Any]]:
    return usage_repo.report(session=session, **query)


def test_each_raw_measure_is_written_out_once_in_the_rollups_order() -> None:
    assert tuple(quick_report.RAW_MEASURES) == MEASURE_NAMES


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    records=st.lists(records_st, max_size=40),
    by=st.sampled_from(sorted(ROLLUP_GROUPS)),
    since=moments,
    until=moments,
    project=st.sampled_from([None, "alpha", "beta", ""]),
    zone=st.sampled_from([None, IST]),
)
def test_the_quick_report_is_the_stores_report(
    db_url: str,
    engine: Any,
    records: list[Any],
    by: str,
    since: datetime | None,
    until: datetime | None,
    project: str | None,
    zone: timezone | None,
) -> None:
    if zone is not None:  # the same instants, told in another zone
        since = since.astimezone(zone) if since else None
        until = until.astimezone(zone) if until else None
    query = {"by": by, "since": since, "until": until, "project": project}
    with Session(engine) as s:
        clear(s)
        insert(s, records)
        expected = full_path(s, **query)
    got = quick_report.report(db_url, **query)
    assert got == expected


def test_after_pruning_both_paths_still_agree(db_url: str, engine: Any) -> None:
    records = [rec(created_at=R0 + timedelta(minutes=13 * i), input_tokens=i) for i in range(40)]
    with Session(engine) as s:
        insert(s, records)
        retention.prune(session=s, actor="t", before=T0)
    for since, until in [(None, None), (R0 + timedelta(minutes=20), None), (None, T0)]:
        query = {"by": "project", "since": since, "until": until, "project": None}
        with Session(engine) as s:
            expected = full_path(s, **query)
        assert quick_report.report(db_url, **query) == expected
        assert expected, "the rollups keep the pruned hours' sums"


@pytest.mark.parametrize("by", ["user", "tag"])
def test_groupings_without_rollups_are_left_to_the_full_path(db_url: str, by: str) -> None:
    open_store(db_url).dispose()
    assert quick_report.report(db_url, by=by) is None


def test_a_time_without_a_zone_is_left_to_the_full_path(sqlite_url: str) -> None:
    open_store(sqlite_url).dispose()
    assert quick_report.report(sqlite_url, by="project", since=datetime(2026, 3, 1)) is None


def test_a_database_not_at_head_is_left_to_the_full_path(db_url: str, engine: Any) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    assert quick_report.report(db_url, by="day") is None


def test_a_missing_sqlite_file_is_left_to_the_full_path(tmp_path: Path) -> None:
    path = tmp_path / "none.db"
    assert quick_report.report(f"sqlite:///{path}", by="model") is None
    assert not path.exists()


def test_a_grouping_the_rollups_do_not_answer_has_no_query() -> None:
    with pytest.raises(ValueError, match="user"):
        quick_report.query("sqlite", "user", None, None, None)


def test_an_hour_and_its_edges_are_one_statement_with_its_parameters() -> None:
    since, until = T0 + timedelta(minutes=30), T0 + timedelta(hours=3, minutes=5)
    sql, params = quick_report.query("sqlite", "model", since, until, "alpha")
    assert sql.count("FROM usage_records") == 2 and sql.count("FROM usage_hourly") == 1
    assert sql.count("?") == len(params) == 9
    assert params[:3] == ["2026-03-01 00:30:00.000000", "2026-03-01 01:00:00.000000", "alpha"]
    pg_sql, pg_params = quick_report.query("postgresql", "model", since, until, "alpha")
    assert pg_sql.count("%s") == 9 and pg_params[0] == since and "?" not in pg_sql


def test_reporting_imports_no_sqlalchemy(sqlite_url: str) -> None:
    engine = open_store(sqlite_url)
    with Session(engine) as s:
        insert(s, [rec(created_at=T0 + timedelta(seconds=SPAN_S // 2))])
    engine.dispose()
    code = (
        "import sys; from addon.store import quick_report;"
        f"rows = quick_report.report({sqlite_url!r}, by='project');"
        "assert [r['project'] for r in rows] == ['alpha'], rows;"
        "print(sorted(m for m in sys.modules if m.startswith(('sqlalchemy', 'sqlmodel'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
