"""Notices budget-alert crossings after spend is committed, claims them, hands them on.

The record keeper calls ``notice`` right after a batch of usage records is committed (from
the writer's database thread): it only adds (key id, day) pairs to a set and wakes this
watcher's own thread, so neither the proxy's event loop nor the writer ever waits for it.
The thread, at most every ``interval_s``, reads the watched keys among them (a budget and
thresholds), sums each one's spend in the period of the records' day, and claims every
threshold crossed and not yet fired (``alerts_repo.claim``: once per period across all
gateways). What it wins goes to the webhook sender (its own thread, retried with backoff);
without a webhook the alert is still recorded and audited, so ``keys show`` lists it.
A check that fails (database down) is tried again later; crossings are levels, not edges,
so a late check misses nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import cast

from sqlalchemy.engine import Engine
from sqlmodel import Session

from addon.alert_sender import Job, Post, WebhookSender, http_post
from addon.alerts import Alert, Period, crossed, message, parse_thresholds, period_of
from addon.limits import day_key
from addon.store import alerts_repo
from addon.store.models import VirtualKey, utcnow
from addon.store.rows import UsageRow

log = logging.getLogger(__name__)

MAX_PENDING = 100_000  # (key, day) pairs waiting for a check; bounded like any queue
RETRY_AFTER_FAILURE_S = 2.0
ADOPT_EVERY_S = 30.0  # how often unsent alerts of gateways that died are looked for


class AlertWatcher:
    def __init__(
        self,
        engine: Engine,
        *,
        instance_id: str,
        webhook: str | None,
        first_backoff_s: float = 1.0,
        interval_s: float = 0.2,
        post: Post = http_post,
    ) -> None:
        self._engine = engine
        self.instance_id = instance_id
        self._interval_s = interval_s
        self.sender = (
            WebhookSender(webhook, self._delivered, first_backoff_s=first_backoff_s, post=post)
            if webhook
            else None
        )
        self._pending: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="tollkeeper-alert-watch", daemon=True
        )

    def start(self) -> None:
        if self.sender is not None:
            self.sender.start()
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout=timeout_s)
        if self.sender is not None:
            self.sender.stop(timeout_s)

    def notice(self, records: Sequence[UsageRow | object]) -> None:
        """Records were committed: remember their keys and days (never waits on I/O)."""
        items = {
            (key_id, day_key(created_at))
            for r in records
            if (key_id := getattr(r, "virtual_key_id", None))
            and (created_at := getattr(r, "created_at", None))
        }
        if items:
            self._add(items)
            self._wake.set()

    def _add(self, items: Iterable[tuple[str, str]]) -> None:
        with self._lock:
            room = MAX_PENDING - len(self._pending)
            for item in items:
                if room <= 0:
                    break  # the keys' next records bring them back
                if item not in self._pending:
                    self._pending.add(item)
                    room -= 1

    def _take(self) -> set[tuple[str, str]]:
        with self._lock:
            items, self._pending = self._pending, set()
        return items

    def _run(self) -> None:
        adopt_at = 0.0
        while not self._stopping.is_set():
            self._wake.wait(ADOPT_EVERY_S)
            self._wake.clear()
            if self.sender is not None and time.monotonic() >= adopt_at:
                adopt_at = time.monotonic() + ADOPT_EVERY_S
                self._guarded_adopt()
            items = self._take()
            pause = self._interval_s
            try:
                self.check(items)
            except Exception as e:  # noqa: BLE001 - the watcher must not die; checked again later
                log.warning("tollkeeper: budget alert check failed (%s); will retry", e)
                self._add(items)
                self._wake.set()
                pause = RETRY_AFTER_FAILURE_S
            self._stopping.wait(pause)  # bursts of commits coalesce into one check

    def _guarded_adopt(self) -> None:
        try:
            self.adopt()
        except Exception as e:  # noqa: BLE001 - tried again in ADOPT_EVERY_S
            log.warning("tollkeeper: could not look for unsent budget alerts (%s)", e)

    def adopt(self) -> list[Alert]:
        """Send the alerts that gateways which are gone claimed but never sent."""
        with Session(self._engine) as session:
            orphans = alerts_repo.adopt_orphans(session, self.instance_id)
            alerts = [
                Alert(
                    key_id=row.id,
                    project=row.project,
                    threshold_percent=a.threshold_percent,
                    spent_picousd=a.spent_picousd,
                    budget_picousd=a.budget_picousd,
                    budget_period=row.budget_period,
                    period_start=_day(a.period_start),
                    instance_id=self.instance_id,
                    fired_at=a.fired_at,
                )
                for a, row in orphans
            ]
        for alert in alerts:
            log.warning(
                "tollkeeper: sending the %d%% budget alert of key %s that a stopped gateway"
                " claimed but did not send",
                alert.threshold_percent,
                alert.key_id,
            )
            self._send(alert)
        return alerts

    def check(self, items: Iterable[tuple[str, str]]) -> list[Alert]:
        """Claim every crossing among the (key id, day) pairs; returns the alerts won."""
        items = list(items)
        now = utcnow()
        won: list[Alert] = []
        with Session(self._engine) as session:
            rows = {r.id: r for r in alerts_repo.watched_keys(session, (k for k, _ in items))}
            periods: dict[tuple[str, Period], VirtualKey] = {}
            for key_id, day in items:
                if (row := rows.get(key_id)) is not None:
                    period = period_of(row.budget_period, _day(day), row.created_at)
                    periods[(key_id, period)] = row
            for (_, period), row in sorted(periods.items(), key=lambda kv: kv[0][1].start_day):
                won += self._claim_crossed(session, row, period, now)
        return won

    def _claim_crossed(
        self, session: Session, row: VirtualKey, period: Period, now: datetime
    ) -> list[Alert]:
        try:
            thresholds = parse_thresholds(row.alert_at)
        except ValueError as e:
            log.warning("tollkeeper: key %s has unreadable alert thresholds (%s)", row.id, e)
            return []
        budget = row.budget_picousd or 0
        spent = alerts_repo.spent_in(session, row.id, period)
        done = {a.threshold_percent for a in alerts_repo.fired(session, row.id, period.start_day)}
        delivery = "pending" if self.sender is not None else "no_webhook"
        won = []
        for threshold in crossed(thresholds, spent, budget):
            if threshold in done:
                continue
            alert = Alert(
                key_id=row.id,
                project=row.project,
                threshold_percent=threshold,
                spent_picousd=spent,
                budget_picousd=budget,
                budget_period=row.budget_period,
                period_start=period.start,
                instance_id=self.instance_id,
                fired_at=now,
            )
            if alerts_repo.claim(session, alert, delivery=delivery):
                log.info("tollkeeper: key %s crossed its %d%% budget alert", row.id, threshold)
                self._send(alert)  # at once: a later claim failing must not strand this one
                won.append(alert)
        return won

    def _send(self, alert: Alert) -> None:
        if self.sender is None:
            return
        job = Job(body=message(alert), ref=alert)
        if not self.sender.submit(job):
            job.error = "alert queue full"
            self._delivered(job, False)

    def _delivered(self, job: Job, ok: bool) -> None:
        alert = cast(Alert, job.ref)
        with Session(self._engine) as session:
            alerts_repo.delivered(
                session, alert, ok=ok, attempts=job.attempts, error=job.error, now=utcnow()
            )


def _day(day: str) -> datetime:
    return datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
