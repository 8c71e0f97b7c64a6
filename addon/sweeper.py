"""The gateway's housekeeping thread: its instance heartbeat, dead instances' reservations,
expired reservations and old per-minute counters.

At start (synchronously, before the gateway admits anything) the instance registers and
releases what dead instances left in flight. Then every ``interval_s`` it refreshes its
heartbeat, releases reservations of instances that stopped beating, and sweeps. Failures
are logged once per outage; the next round tries again.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from addon.deadline import DeadlineRunner
from addon.store import instances_repo, limits_repo

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(seconds=60)
DEREGISTER_MIN_S = 0.5
PROCESS_STARTED = datetime.now(UTC)  # at import: this process's instances start later


def host_identity() -> str:
    """This host as pids are seen from here: hostname plus pid namespace (containers that
    share a hostname do not see each other's pids)."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = "-"
    return f"{socket.gethostname()}#{namespace}"[:255]


def pid_alive(pid: int, started_at: datetime) -> bool:
    """Whether the instance of ``pid`` started at ``started_at`` still runs here. Our own
    pid counts only for instances this process started (a runtime replaced on reload); a
    zombie does not count."""
    if pid == os.getpid():
        return started_at >= PROCESS_STARTED
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


class Sweeper:
    def __init__(self, engine: Engine, *, interval_s: float = 15.0) -> None:
        self._engine = engine
        self._interval_s = interval_s
        self.instance_id = secrets.token_hex(8)
        self._host, self._pid = host_identity(), os.getpid()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def start(self) -> None:
        now = datetime.now(UTC)
        with Session(self._engine) as s:
            instances_repo.register(
                session=s, instance_id=self.instance_id, host=self._host, pid=self._pid, now=now
            )
        released = self._release_dead(now)
        if released:
            log.warning("tollkeeper: released %d reservations of stopped gateways", released)
        self._thread = threading.Thread(target=self._run, name="tollkeeper-sweeper", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Tell the thread to end after the round it runs (never waits)."""
        self._stop.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        """End the thread and deregister, within about ``timeout_s`` (at least
        ``DEREGISTER_MIN_S`` for the deregistration): a database that hangs must not hold up
        the gateway's exit, and another gateway releases what this one left once its
        heartbeat is stale."""
        until = time.monotonic() + timeout_s
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)  # a daemon: a hung round is left behind
        runner = DeadlineRunner("tollkeeper-deregister")
        try:
            runner.call(self._deregister, max(DEREGISTER_MIN_S, until - time.monotonic()))
        except Exception as e:  # noqa: BLE001 - others release it once its heartbeat is stale
            log.warning("tollkeeper: could not deregister this gateway instance (%s)", e)
        finally:
            runner.close()  # its thread ends (after a hung call returns, if ever)

    def _deregister(self) -> None:
        with Session(self._engine) as s:
            instances_repo.deregister(session=s, instance_id=self.instance_id)

    def _release_dead(self, now: datetime) -> int:
        with Session(self._engine) as s:
            return instances_repo.release_dead(
                session=s,
                me=self.instance_id,
                host=self._host,
                now=now,
                stale_after=STALE_AFTER,
                pid_alive=pid_alive,
            )

    def round(self, now: datetime) -> None:
        with Session(self._engine) as s:
            instances_repo.heartbeat(
                session=s, instance_id=self.instance_id, host=self._host, pid=self._pid, now=now
            )
        self._release_dead(now)
        with Session(self._engine) as s:
            limits_repo.sweep(s, now)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.round(datetime.now(UTC))
                if self._failing:
                    log.warning("tollkeeper: housekeeping works again")
                self._failing = False
            except Exception as e:  # noqa: BLE001 - retried next round
                if not self._failing:
                    log.warning("tollkeeper: housekeeping failed (%s); will retry", e)
                self._failing = True
