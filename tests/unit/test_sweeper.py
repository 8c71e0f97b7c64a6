"""The housekeeping thread: which processes count as alive, and what a start releases."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, select

from addon.store import instances_repo
from addon.store.db import open_store
from addon.store.models import GatewayInstance, InflightRequest
from addon.sweeper import Sweeper, host_identity, pid_alive


def test_own_pid_a_zombie_and_a_reaped_child_are_not_alive() -> None:
    assert not pid_alive(os.getpid())  # a restarted container's gateway gets its pid back
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert pid_alive(child.pid)
        child.kill()
        deadline = time.monotonic() + 10
        while pid_alive(child.pid):  # a zombie until reaped: already not alive
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        child.kill()
        child.wait()
    assert not pid_alive(child.pid)


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
