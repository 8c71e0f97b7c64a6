"""The housekeeping thread: which processes count as alive, and what a start releases."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from addon.store import instances_repo
from addon.store.db import open_store
from addon.store.models import GatewayInstance, InflightRequest
from addon.sweeper import Sweeper, host_identity, pid_alive


def test_own_pid_counts_only_for_instances_this_process_started() -> None:
    before = datetime.now(UTC) - timedelta(days=1)  # a restarted container got its pid back
    assert not pid_alive(os.getpid(), before)
    assert pid_alive(os.getpid(), datetime.now(UTC))  # a runtime replaced on reload


def test_a_zombie_and_a_reaped_child_are_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    now = datetime.now(UTC)
    try:
        assert pid_alive(child.pid, now)
        child.kill()
        deadline = time.monotonic() + 10
        while pid_alive(child.pid, now):  # a zombie until reaped: already not alive
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        child.kill()
        child.wait()
    assert not pid_alive(child.pid, now)


def test_start_registers_and_releases_reservations_of_dead_instances(sqlite_url: str) -> None:
    engine = open_store(sqlite_url)
    now = datetime.now(UTC)
    with Session(engine) as s:
        instances_repo.register(
            session=s, instance_id="crashed", host=host_identity(), pid=2**22 + 7, now=now
        )
        s.add(
            InflightRequest(
                request_id="r1",
                virtual_key_id="k",
                expires_at=now + timedelta(hours=1),
                instance_id="crashed",
            )
        )
        s.commit()
    sweeper = Sweeper(engine, interval_s=3600)
    sweeper.start()
    try:
        with Session(engine) as s:
            assert s.exec(select(InflightRequest)).all() == []
            ids = set(s.exec(select(col(GatewayInstance.id))))
        assert ids == {sweeper.instance_id}
    finally:
        sweeper.stop()
    with Session(engine) as s:  # a clean stop deregisters
        assert s.exec(select(GatewayInstance)).all() == []
    engine.dispose()


def test_a_second_runtime_in_the_same_process_keeps_the_first_ones_reservations(
    sqlite_url: str,
) -> None:
    engine = open_store(sqlite_url)
    first = Sweeper(engine, interval_s=3600)
    first.start()
    with Session(engine) as s:
        s.add(
            InflightRequest(
                request_id="r1",
                virtual_key_id="k",
                expires_at=datetime.now(UTC) + timedelta(hours=1),
                instance_id=first.instance_id,
            )
        )
        s.commit()
    second = Sweeper(engine, interval_s=3600)  # options changed: a new runtime starts first
    second.start()
    with Session(engine) as s:
        assert [r.request_id for r in s.exec(select(InflightRequest))] == ["r1"]
    second.stop()
    first.stop()
    engine.dispose()


def test_stop_deregisters(sqlite_url: str) -> None:
    engine = open_store(sqlite_url)
    sweeper = Sweeper(engine, interval_s=3600)
    sweeper.start()
    sweeper.stop()
    with Session(engine) as s:
        assert s.get(GatewayInstance, sweeper.instance_id) is None
    engine.dispose()


def test_stop_gives_up_on_a_hanging_database_and_says_so(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither a round stuck in the database nor a deregistration that hangs holds up the
    gateway's exit; another gateway releases the instance once its heartbeat is stale."""
    engine = open_store(sqlite_url)
    sweeper = Sweeper(engine, interval_s=0.01)
    sweeper.start()
    entered, release = threading.Event(), threading.Event()

    def hang(*args: object, **kwargs: object) -> int:
        entered.set()
        release.wait(30)
        return 0

    monkeypatch.setattr(instances_repo, "heartbeat", hang)
    monkeypatch.setattr(instances_repo, "deregister", hang)
    try:
        assert entered.wait(10)  # the thread's round hangs
        stopper = threading.Thread(target=sweeper.stop, kwargs={"timeout_s": 0.05})
        stopper.start()
        stopper.join(3)  # a round: 0.05 s; the deregistration: DEREGISTER_MIN_S
        assert not stopper.is_alive()
        assert "could not deregister this gateway instance" in caplog.text
    finally:
        release.set()
        engine.dispose()


def test_stop_leaves_no_thread_behind(sqlite_url: str) -> None:
    """A runtime replaced on every options change must not leave a thread each time."""
    engine = open_store(sqlite_url)
    sweeper = Sweeper(engine, interval_s=3600)
    sweeper.start()
    sweeper.stop()
    deadline = time.monotonic() + 10
    while any(t.name == "tollkeeper-deregister" for t in threading.enumerate()):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    engine.dispose()
