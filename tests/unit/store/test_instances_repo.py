"""In-flight reservations belong to a gateway instance; a dead instance's are released."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from addon.limits import Limits
from addon.store import instances_repo
from addon.store.db import open_store
from addon.store.limits_repo import admit
from addon.store.models import GatewayInstance, InflightRequest

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
STALE = timedelta(seconds=60)


@pytest.fixture
def engine(migrated_db_url: str) -> Iterator[Engine]:
    e = open_store(migrated_db_url)
    yield e
    e.dispose()


def register(engine: Engine, instance_id: str, host: str = "h1", pid: int = 10, at=NOW) -> None:
    with Session(engine) as s:
        instances_repo.register(session=s, instance_id=instance_id, host=host, pid=pid, now=at)


def reserve(engine: Engine, request_id: str, instance_id: str | None) -> None:
    limits = Limits("key" + request_id[-7:].rjust(7, "0"), None, "total", None, None, 10)
    with Session(engine) as s:
        admit(
            session=s,
            limits=limits,
            request_id=request_id,
            now=NOW,
            reserve_picousd=0,
            reserve_tokens=0,
            ttl=timedelta(hours=1),
            instance_id=instance_id,
        )


def release_dead(engine: Engine, alive: set[int], me: str = "me", at=NOW) -> int:
    with Session(engine) as s:
        return instances_repo.release_dead(
            session=s,
            me=me,
            host="h1",
            now=at,
            stale_after=STALE,
            pid_alive=lambda pid, _: pid in alive,
        )


def held(engine: Engine) -> set[str]:
    with Session(engine) as s:
        return set(s.exec(select(col(InflightRequest.request_id))))


def instances(engine: Engine) -> set[str]:
    with Session(engine) as s:
        return set(s.exec(select(col(GatewayInstance.id))))


def test_reservations_of_a_process_gone_from_this_host_are_released(engine: Engine) -> None:
    register(engine, "me", pid=30)
    register(engine, "dead", pid=10)
    register(engine, "alive", pid=20)
    reserve(engine, "r-dead", "dead")
    reserve(engine, "r-alive", "alive")
    reserve(engine, "r-me", "me")
    assert release_dead(engine, alive={20, 30}) == 1
    assert held(engine) == {"r-alive", "r-me"}
    assert instances(engine) == {"me", "alive"}


def test_an_instance_on_another_host_is_dead_once_its_heartbeat_is_stale(engine: Engine) -> None:
    register(engine, "me")
    register(engine, "far", host="h2", pid=10, at=NOW - timedelta(seconds=30))
    reserve(engine, "r-far", "far")
    assert release_dead(engine, alive=set()) == 0  # pid 10 is not ours to judge: other host
    assert release_dead(engine, alive=set(), at=NOW + timedelta(seconds=31)) == 1
    assert held(engine) == set()


def test_a_heartbeat_keeps_an_instance_alive_and_re_registers_it(engine: Engine) -> None:
    register(engine, "me")
    register(engine, "far", host="h2", at=NOW)
    later = NOW + timedelta(seconds=50)
    with Session(engine) as s:
        instances_repo.heartbeat(session=s, instance_id="far", host="h2", pid=10, now=later)
    reserve(engine, "r-far", "far")
    assert release_dead(engine, alive=set(), at=NOW + timedelta(seconds=90)) == 0
    with Session(engine) as s:  # taken for dead and removed meanwhile: it registers again
        instances_repo.deregister(session=s, instance_id="far")
        instances_repo.heartbeat(session=s, instance_id="far", host="h2", pid=10, now=later)
    assert "far" in instances(engine)


def test_reservations_of_no_known_instance_are_released(engine: Engine) -> None:
    register(engine, "me")
    reserve(engine, "r-old", None)  # made before instances existed
    reserve(engine, "r-ghost", "never-registered")
    assert release_dead(engine, alive=set()) == 2
    assert held(engine) == set()


def test_deregister_releases_what_the_instance_holds(engine: Engine) -> None:
    register(engine, "me")
    register(engine, "other")
    reserve(engine, "r-me", "me")
    reserve(engine, "r-other", "other")
    with Session(engine) as s:
        instances_repo.deregister(session=s, instance_id="me")
    assert held(engine) == {"r-other"} and instances(engine) == {"other"}
