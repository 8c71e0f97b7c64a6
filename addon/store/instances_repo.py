"""Gateway process instances: who holds which in-flight reservation, and who is gone.

Each gateway process registers an instance (host, pid) at start and refreshes ``seen_at``
while it runs. A reservation carries the id of the instance that admitted it. An instance
is dead when its heartbeat is older than ``stale_after``, or when it ran on this host and
its process is no longer running (``pid_alive(pid, started_at)`` says; a restarted
container gets its pid back, so our own pid counts only for instances started since).
Reservations of dead instances, and of instances nobody registered, are released: a
crashed gateway never blocks a ``--max-parallel`` key.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, update
from sqlmodel import Session, col, select

from addon.store.models import GatewayInstance, InflightRequest


def register(*, session: Session, instance_id: str, host: str, pid: int, now: datetime) -> None:
    session.add(GatewayInstance(id=instance_id, host=host, pid=pid, started_at=now, seen_at=now))
    session.commit()


def heartbeat(*, session: Session, instance_id: str, host: str, pid: int, now: datetime) -> None:
    """Refresh ``seen_at``; registers again if another gateway took us for dead meanwhile."""
    stmt = update(GatewayInstance).where(col(GatewayInstance.id) == instance_id)
    if session.execute(stmt.values(seen_at=now)).rowcount == 0:  # type: ignore[attr-defined]
        session.add(
            GatewayInstance(id=instance_id, host=host, pid=pid, started_at=now, seen_at=now)
        )
    session.commit()


def dead_instances(
    *,
    session: Session,
    me: str,
    host: str,
    now: datetime,
    stale_after: timedelta,
    pid_alive: Callable[[int, datetime], bool],
) -> list[str]:
    dead = []
    for row in session.exec(select(GatewayInstance).where(col(GatewayInstance.id) != me)):
        gone_here = row.host == host and not pid_alive(row.pid, row.started_at)
        if gone_here or row.seen_at <= now - stale_after:
            dead.append(row.id)
    return dead


def release_dead(
    *,
    session: Session,
    me: str,
    host: str,
    now: datetime,
    stale_after: timedelta,
    pid_alive: Callable[[int, datetime], bool],
) -> int:
    """Drop dead instances and release their reservations (and unowned ones); how many."""
    dead = dead_instances(
        session=session, me=me, host=host, now=now, stale_after=stale_after, pid_alive=pid_alive
    )
    live = select(col(GatewayInstance.id)).where(col(GatewayInstance.id).not_in(dead))
    owner = col(InflightRequest.instance_id)
    released = session.execute(
        delete(InflightRequest).where(or_(owner.is_(None), owner.not_in(live)))
    ).rowcount  # type: ignore[attr-defined]
    if dead:
        session.execute(delete(GatewayInstance).where(col(GatewayInstance.id).in_(dead)))
    session.commit()
    return int(released or 0)


def deregister(*, session: Session, instance_id: str) -> None:
    """A clean stop: what this instance still holds is released with it."""
    session.execute(delete(InflightRequest).where(col(InflightRequest.instance_id) == instance_id))
    session.execute(delete(GatewayInstance).where(col(GatewayInstance.id) == instance_id))
    session.commit()
