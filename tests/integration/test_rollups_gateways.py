"""Real gateways keep the hourly rollups equal to their usage records: two processes sharing
one PostgreSQL, and a SIGKILLed gateway whose journal a new one replays (SQLite)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from integration.test_durability import _signal_and_wait, rig
from sqlalchemy import func, select
from sqlmodel import Session

from addon.store import retention, rollups, usage_repo
from addon.store.db import open_store


@contextmanager
def _session(url: str) -> Iterator[Session]:
    engine = open_store(url)
    try:
        with Session(engine) as s:
            yield s
    finally:
        engine.dispose()


def _check(url: str, completed: set[str]) -> None:
    with _session(url) as s:
        raw = s.execute(select(func.count()).select_from(usage_repo.USAGE_TABLE)).scalar()
        rolled = s.execute(select(func.sum(rollups.HOURLY.c.requests))).scalar()
        assert retention.mismatched_hours(s) == []
        report = usage_repo.report(session=s, by="project")
    assert raw == rolled and raw >= len(completed)
    assert sum(r["requests"] for r in report) == raw


@pytest.mark.postgres
def test_two_gateways_on_one_postgresql(postgres_url, tmp_path, monkeypatch):
    with rig(tmp_path, monkeypatch, db_url=postgres_url) as r:
        a, b = r.start_gateway(), r.start_gateway()
        with r.load(a) as load_a, r.load(b) as load_b:
            load_a.wait(completed=100)
            load_b.wait(completed=100)
            done = load_a.stop() | load_b.stop()
        _signal_and_wait(a, signal.SIGTERM)
        _signal_and_wait(b, signal.SIGTERM)
        assert not r.wait_recorded(done), r.log()
        _check(postgres_url, done)


def test_a_replayed_journal_adds_to_the_rollups_once(tmp_path, monkeypatch):
    with rig(tmp_path, monkeypatch) as r:
        gw = r.start_gateway()
        with r.load(gw) as load:
            load.wait(completed=100)
            _signal_and_wait(gw, signal.SIGKILL)
            done = load.stop()
        r.start_gateway()  # replays the killed process's journal
        assert not r.wait_recorded(done), r.log()
        _signal_and_wait(r.gateways[-1], signal.SIGTERM)
        _check(f"sqlite:///{r.home / 'tollkeeper.db'}", done)
