"""The alert watcher on a real database: claims crossings once per period, sends what it
won, records and audits the delivery; two gateways racing for one alert send it once."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from addon.alert_watcher import AlertWatcher
from addon.alerts import Alert
from addon.store import alerts_repo, instances_repo, keys_repo, usage_repo
from addon.store.db import open_store
from addon.store.keys_repo import KeyPolicy
from addon.store.models import AuditEvent, UsageRecord

USD = 10**12
DAY1 = datetime(2026, 12, 1, 23, 0, tzinfo=UTC)
DAY2 = DAY1 + timedelta(hours=2)


@pytest.fixture
def engine(migrated_db_url: str) -> Iterator[Engine]:
    e = open_store(migrated_db_url)
    yield e
    e.dispose()


def new_key(engine: Engine, *, period: str = "daily", alert_at: tuple[int, ...] = (50, 100)) -> str:
    policy = KeyPolicy(budget_picousd=10 * USD, budget_period=period, alert_at=alert_at)
    with Session(engine) as s:
        row, _ = keys_repo.create_key(session=s, project="search", policy=policy, actor="t")
        return row.id


def spend(engine: Engine, key_id: str, usd: int, when: datetime = DAY1) -> list[UsageRecord]:
    records = [
        UsageRecord(
            request_id=uuid.uuid4().hex,
            created_at=when,
            provider="openai",
            project="search",
            virtual_key_id=key_id,
            cost_picousd=usd * USD,
        )
    ]
    with Session(engine) as s:
        usage_repo.insert_records(session=s, records=records)
    return records


def items(records: list[UsageRecord]) -> list[tuple[str, str]]:
    return [(r.virtual_key_id or "", r.created_at.strftime("%Y-%m-%d")) for r in records]


class Hook:
    """A webhook receiver in-process: records bodies, fails the first ``failures``."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.bodies: list[dict[str, object]] = []
        self.calls = 0

    def __call__(self, url: str, body: bytes, timeout_s: float) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionRefusedError
        self.bodies.append(json.loads(body))


def test_crossings_fire_once_per_threshold_per_period(engine: Engine):
    key = new_key(engine)
    watcher = AlertWatcher(engine, instance_id="gw1", webhook=None)
    assert watcher.check(items(spend(engine, key, 4))) == []
    won = watcher.check(items(spend(engine, key, 1)))  # $5 of $10: 50%
    assert [a.threshold_percent for a in won] == [50]
    assert watcher.check(items(spend(engine, key, 1))) == []  # still 50% only, already fired
    won = watcher.check(items(spend(engine, key, 5)))  # $11: past 100%
    assert [(a.threshold_percent, a.spent_picousd) for a in won] == [(100, 11 * USD)]
    assert watcher.check(items(spend(engine, key, 1))) == []
    with Session(engine) as s:
        fired = alerts_repo.fired(s, key)
    assert [(a.threshold_percent, a.period_start, a.delivery) for a in fired] == [
        (50, "2026-12-01", "no_webhook"),
        (100, "2026-12-01", "no_webhook"),
    ]


def test_a_new_period_fires_again_and_late_records_count_in_their_own_day(engine: Engine):
    key = new_key(engine)
    watcher = AlertWatcher(engine, instance_id="gw1", webhook=None)
    late = spend(engine, key, 6, DAY1)
    early = spend(engine, key, 2, DAY2)  # the next day: $2 of $10 there
    won = watcher.check(items(late) + items(early))  # checked after midnight
    assert [(a.threshold_percent, a.period_start.day) for a in won] == [(50, 1)]
    won = watcher.check(items(spend(engine, key, 3, DAY2)))
    assert [(a.threshold_percent, a.period_start.day) for a in won] == [(50, 2)]


def test_a_total_budget_has_one_period_from_the_keys_first_day(engine: Engine):
    key = new_key(engine, period="total", alert_at=(50,))
    watcher = AlertWatcher(engine, instance_id="gw1", webhook=None)
    spend(engine, key, 3, DAY1)
    assert [a.threshold_percent for a in watcher.check(items(spend(engine, key, 3, DAY2)))] == [50]
    assert watcher.check(items(spend(engine, key, 3, DAY2 + timedelta(days=40)))) == []


def test_keys_without_thresholds_are_not_watched(engine: Engine):
    key = new_key(engine, alert_at=())
    watcher = AlertWatcher(engine, instance_id="gw1", webhook=None)
    assert watcher.check(items(spend(engine, key, 20))) == []


def test_the_thread_sends_what_it_claimed_and_audits_the_delivery(engine: Engine):
    key = new_key(engine)
    hook = Hook(failures=2)
    watcher = AlertWatcher(
        engine, instance_id="gw1", webhook="http://127.0.0.1:9/h", first_backoff_s=0.001, post=hook
    )
    delivered = threading.Event()
    inner = watcher._delivered

    def spy(job, ok):  # type: ignore[no-untyped-def]
        inner(job, ok)
        delivered.set()

    watcher.sender._on_done = spy  # type: ignore[union-attr]
    watcher.start()
    try:
        watcher.notice(spend(engine, key, 6))
        assert delivered.wait(10)
    finally:
        watcher.stop()
    assert hook.calls == 3
    (body,) = hook.bodies
    assert (body["key_id"], body["threshold_percent"], body["spent_usd"]) == (key, 50, "6.00")
    with Session(engine) as s:
        (alert,) = alerts_repo.fired(s, key)
        assert (alert.delivery, alert.attempts, alert.last_error) == ("sent", 3, None)
        events = s.exec(
            select(AuditEvent).where(col(AuditEvent.action) == "key.budget_alert")
        ).all()
    (event,) = events
    assert event.target == key and event.actor == "gateway gw1"
    details = json.loads(event.details_json)
    assert details["delivery"] == "sent" and details["threshold_percent"] == 50


def test_a_failing_database_check_is_retried_later(engine: Engine):
    key = new_key(engine)
    watcher = AlertWatcher(engine, instance_id="gw1", webhook=None)
    watcher.notice(spend(engine, key, 6))
    pending = watcher._take()
    assert pending == {(key, "2026-12-01")}
    watcher._add(pending)  # what _run does when check raises
    assert [a.threshold_percent for a in watcher.check(watcher._take())] == [50]


@pytest.mark.postgres
def test_two_gateways_racing_for_one_alert_send_it_once(postgres_url: str):
    engines = [open_store(postgres_url) for _ in range(2)]
    key = new_key(engines[0])
    records = spend(engines[0], key, 10)
    hooks = [Hook(), Hook()]
    watchers = [
        AlertWatcher(e, instance_id=f"gw{i}", webhook="http://127.0.0.1:9/h", post=h)
        for i, (e, h) in enumerate(zip(engines, hooks, strict=True))
    ]
    barrier = threading.Barrier(2)
    won: dict[int, list[int]] = {}

    def race(i: int) -> None:
        barrier.wait()
        won[i] = [a.threshold_percent for a in watchers[i].check(items(records))]

    threads = [threading.Thread(target=race, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(won[0] + won[1]) == [50, 100]  # each threshold won by exactly one
    with Session(engines[0]) as s:
        fired = alerts_repo.fired(s, key)
    assert sorted(a.threshold_percent for a in fired) == [50, 100]
    owners = {a.threshold_percent: a.instance_id for a in fired}
    for i in range(2):
        assert sorted(won[i]) == sorted(t for t, o in owners.items() if o == f"gw{i}")
    for e in engines:
        e.dispose()


def test_unsent_alerts_of_a_gateway_that_is_gone_are_adopted_and_sent_once(engine: Engine):
    key = new_key(engine)
    records = spend(engine, key, 10)
    with Session(engine) as s:
        for gw in ("alive", "me"):
            instances_repo.register(session=s, instance_id=gw, host="h", pid=1, now=DAY1)
    crashed = AlertWatcher(engine, instance_id="crashed", webhook="http://127.0.0.1:9/h")
    crashed.check(items(records))  # claimed 50 and 100; its sender never ran
    alive = AlertWatcher(engine, instance_id="alive", webhook="http://127.0.0.1:9/h")
    theirs = Alert(key, "search", 80, 8 * USD, 10 * USD, "daily", DAY1, "alive", DAY1)
    with Session(engine) as s:  # a pending alert of a live gateway is left to it
        assert alerts_repo.claim(s, theirs, delivery="pending")
    hook = Hook()
    me = AlertWatcher(engine, instance_id="me", webhook="http://127.0.0.1:9/h", post=hook)
    adopted = me.adopt()
    assert sorted(a.threshold_percent for a in adopted) == [50, 100]
    assert all(a.instance_id == "me" and a.spent_picousd == 10 * USD for a in adopted)
    me.sender.start()  # type: ignore[union-attr]
    me.sender.stop(timeout_s=10)  # type: ignore[union-attr]  # sends what is due first
    assert sorted(b["threshold_percent"] for b in hook.bodies) == [50, 100]
    assert me.adopt() == [] and alive.adopt() == []
    with Session(engine) as s:
        owners = {a.threshold_percent: a.instance_id for a in alerts_repo.fired(s, key)}
    assert owners == {50: "me", 100: "me", 80: "alive"}
