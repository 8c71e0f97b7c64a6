"""Hourly rollups equal the sums of the raw records: after inserts, pruning, repricing and
rebuilds, on both databases. The expected sums are computed here from the records themselves."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, update
from sqlmodel import Session
from usagerows import T0, clear, insert, moments, rec, records_st

from addon.pricing.codec import price_from_json
from addon.pricing.table import PriceBook
from addon.store import report_fields, retention, rollups, usage_repo
from addon.store.db import open_store
from addon.store.models import AuditEvent, UsageRecord
from addon.store.reprice import reprice

COUNTED = report_fields.MEASURE_NAMES


@pytest.fixture
def engine(migrated_db_url: str) -> Iterator[Any]:
    eng = open_store(migrated_db_url)
    yield eng
    eng.dispose()


def expected(
    records: list[UsageRecord], by: str, since: datetime | None, until: datetime | None
) -> dict[Any, dict[str, int]]:
    """The report computed from the records, in Python."""
    out: dict[Any, dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTED, 0))
    for r in records:
        if (since and r.created_at < since) or (until and r.created_at >= until):
            continue
        group = r.created_at.strftime("%Y-%m-%d") if by == "day" else getattr(r, by)
        for m in rollups.MEASURES:
            out[group][m.name] += m.of_record(r)
    return dict(out)


def reported(
    session: Session, by: str, since: datetime | None = None, until: datetime | None = None
) -> dict[Any, dict[str, int]]:
    field = {"virtual_key_id": "key"}.get(by, by)
    rows = usage_repo.report(session=session, by=field, since=since, until=until)
    name = report_fields.GROUPS[field]
    return {r[name]: {m: int(r[m]) for m in COUNTED} for r in rows}


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    records=st.lists(records_st, max_size=40),
    by=st.sampled_from(["project", "virtual_key_id", "model", "provider", "day"]),
    since=moments,
    until=moments,
)
def test_reports_from_rollups_equal_the_raw_sums(
    engine: Any,
    records: list[UsageRecord],
    by: str,
    since: datetime | None,
    until: datetime | None,
) -> None:
    with Session(engine) as s:
        clear(s)
        insert(s, records)
        assert retention.mismatched_hours(s) == []
        assert reported(s, by, since, until) == expected(records, by, since, until)


@pytest.mark.parametrize(
    ("since", "until"),
    [
        (T0 + timedelta(minutes=30), None),
        (None, T0 + timedelta(hours=2, minutes=30)),
        (T0 + timedelta(minutes=30), T0 + timedelta(hours=2, minutes=30)),
        (T0 + timedelta(minutes=10), T0 + timedelta(minutes=50)),  # inside one hour
        (T0 + timedelta(minutes=50), T0 + timedelta(hours=1, minutes=10)),  # two partial hours
        (T0 + timedelta(hours=1), T0 + timedelta(hours=2)),  # whole hours only
    ],
)
def test_a_since_or_until_inside_an_hour_is_exact(
    engine: Any, since: datetime | None, until: datetime | None
) -> None:
    records = [rec(created_at=T0 + timedelta(minutes=7 * i), input_tokens=i) for i in range(30)]
    with Session(engine) as s:
        insert(s, records)
        got = reported(s, "project", since, until)
    assert got == expected(records, "project", since, until)


def test_an_empty_string_and_a_missing_value_stay_apart(engine: Any) -> None:
    records = [rec(project=""), rec(project=None), rec(project=None, input_tokens=5)]
    with Session(engine) as s:
        insert(s, records)
        got = reported(s, "project")
    assert got == expected(records, "project", None, None)
    assert got[""]["requests"] == 1 and got[None]["requests"] == 2


def test_a_request_id_written_twice_counts_once(engine: Any) -> None:
    first = rec(request_id="same")
    with Session(engine) as s:
        insert(s, [first])
        insert(s, [rec(request_id="same", input_tokens=999), rec(request_id="other")])
        got = reported(s, "project")
    assert got["alpha"]["requests"] == 2 and got["alpha"]["input_tokens"] == 200


def spread(n: int) -> list[UsageRecord]:
    """``n`` records, one every 17 minutes from T0, in two projects, some unpriced."""
    return [
        rec(
            created_at=T0 + timedelta(minutes=17 * i),
            project="alpha" if i % 3 else "beta",
            cost_picousd=None if i % 4 == 0 else 1000 + i,
            input_tokens=10 * i,
        )
        for i in range(n)
    ]


def test_pruning_keeps_the_reports_and_deletes_only_whole_old_hours(engine: Any) -> None:
    records = spread(60)
    cut = T0 + timedelta(hours=5, minutes=30)  # rounded down to 05:00
    with Session(engine) as s:
        insert(s, records)
        before = {by: reported(s, by) for by in ("project", "day", "model")}
        assert retention.prune_count(s, cut) == sum(
            r.created_at < T0 + timedelta(hours=5) for r in records
        )
        deleted = retention.prune(session=s, actor="t", before=cut)
        left = s.execute(select(func.count()).select_from(UsageRecord)).scalar()
        assert deleted > 0 and left == len(records) - deleted
        assert s.execute(select(func.min(UsageRecord.created_at))).scalar() >= T0 + timedelta(
            hours=5
        )
        assert {by: reported(s, by) for by in before} == before
        # exact reports over whole hours and over partial hours after the cutoff
        later = T0 + timedelta(hours=7, minutes=10)
        assert reported(s, "project", later) == expected(records, "project", later, None)
        audit = s.execute(select(AuditEvent).where(AuditEvent.action == "usage.pruned")).one()
        assert f'"deleted": {deleted}' in audit[0].details_json


def test_pruning_is_refused_while_rollups_differ_from_the_records(engine: Any) -> None:
    with Session(engine) as s:
        insert(s, spread(10))
        s.execute(update(rollups.HOURLY).values(requests=rollups.HOURLY.c.requests + 1))
        s.commit()
        with pytest.raises(retention.RollupsStale, match="usage rebuild"):
            retention.prune(session=s, actor="t", before=T0 + timedelta(days=1))
        assert s.execute(select(func.count()).select_from(UsageRecord)).scalar() == 10


def test_rebuild_repairs_damaged_rollups_and_keeps_pruned_hours(engine: Any) -> None:
    records = spread(60)
    with Session(engine) as s:
        insert(s, records)
        retention.prune(session=s, actor="t", before=T0 + timedelta(hours=4))
        kept = reported(s, "project")
        # damage: one hour lost, another doubled; and a record imported without rollups
        s.execute(delete(rollups.HOURLY).where(rollups.HOURLY.c.hour == T0 + timedelta(hours=8)))
        s.execute(
            update(rollups.HOURLY)
            .where(rollups.HOURLY.c.hour == T0 + timedelta(hours=9))
            .values(requests=rollups.HOURLY.c.requests * 2)
        )
        imported = rec(created_at=T0 + timedelta(hours=9, minutes=1), project="gamma")
        s.execute(usage_repo.insert(usage_repo.USAGE_TABLE), [usage_repo.as_dict(imported)])
        s.commit()
        assert len(retention.mismatched_hours(s)) == 2
        summary = retention.rebuild(session=s, actor="t")
        assert retention.mismatched_hours(s) == []
        assert summary.records == sum(r.created_at >= T0 + timedelta(hours=4) for r in records) + 1
        after = reported(s, "project")
    kept["gamma"] = expected([imported], "project", None, None)["gamma"]
    assert after == kept  # the pruned hours (00:00-04:00) are still counted


def test_rebuild_of_a_range_touches_only_its_hours(engine: Any) -> None:
    with Session(engine) as s:
        insert(s, spread(30))
        s.execute(update(rollups.HOURLY).values(requests=0))
        s.commit()
        lo, hi = T0 + timedelta(hours=2, minutes=30), T0 + timedelta(hours=4, minutes=1)
        retention.rebuild(session=s, actor="t", since=lo, until=hi)
        bad = retention.mismatched_hours(s)
        assert bad and all(h < T0 + timedelta(hours=2) or h >= T0 + timedelta(hours=5) for h in bad)
        assert retention.mismatched_hours(s, lo, hi) == []


def test_repricing_moves_the_rollups_with_the_costs(engine: Any) -> None:
    prices = {"input": "2", "output": "8"}
    records = [
        rec(created_at=T0 + timedelta(minutes=13 * i), model="m1" if i % 2 else "m2")
        for i in range(40)
    ]
    unpriced = [
        rec(created_at=T0 + timedelta(minutes=5 * i), cost_picousd=None, model=f"m{i % 2 + 1}")
        for i in range(9)
    ]
    with Session(engine) as s:
        insert(s, records + unpriced)
        new_book = PriceBook.bundled().with_overrides({"m1": price_from_json(prices)})
        summary = reprice(session=s, book=new_book, actor="t", batch_size=7)
        assert summary.repriced > 20
        assert summary.newly_priced == sum(r.model == "m1" for r in unpriced)
        assert retention.mismatched_hours(s) == []
        stored = list(s.execute(select(UsageRecord)).scalars())
        assert reported(s, "model") == expected(stored, "model", None, None)


@pytest.mark.postgres
def test_parallel_writers_on_postgresql_lose_no_increment(postgres_url: str) -> None:
    engines = [open_store(postgres_url) for _ in range(4)]
    per_writer, batches = 60, 12
    start = threading.Barrier(len(engines))
    failures: list[BaseException] = []

    def write(engine: Any, n: int) -> None:
        try:
            start.wait()
            with Session(engine) as s:
                for b in range(batches):  # all writers hit the same few rollup rows
                    batch = [
                        rec(created_at=T0 + timedelta(minutes=i % 3 * 25), model=f"m{i % 2}")
                        for i in range(per_writer // batches * b, per_writer // batches * (b + 1))
                    ]
                    usage_repo.insert_records(session=s, records=batch)
        except BaseException as e:  # reported below
            failures.append(e)

    threads = [threading.Thread(target=write, args=(e, n)) for n, e in enumerate(engines)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert failures == []
        with Session(engines[0]) as s:
            assert retention.mismatched_hours(s) == []
            total = s.execute(select(func.sum(rollups.HOURLY.c.requests))).scalar()
            assert total == len(engines) * per_writer
    finally:
        for e in engines:
            e.dispose()


def test_a_rebuild_while_a_writer_writes_counts_every_record_once(db_url: str) -> None:
    engines = [open_store(db_url), open_store(db_url)]
    stop = threading.Event()
    written: list[int] = []
    failures: list[BaseException] = []

    def write() -> None:
        try:
            with Session(engines[0]) as s:
                n = 0
                while not stop.is_set() or n < 20:  # at least 20 batches, also after the rebuilds
                    when = T0 + timedelta(minutes=(n * 7) % 300)
                    batch = [rec(created_at=when, model=f"w{n % 5}")]  # new rollup rows too
                    usage_repo.insert_records(session=s, records=batch)
                    n += 1
                written.append(n)
        except BaseException as e:  # reported below
            failures.append(e)

    try:
        with Session(engines[1]) as s:
            insert(s, spread(40))
            writer = threading.Thread(target=write)
            writer.start()
            for _ in range(3):
                retention.rebuild(session=s, actor="t")
            stop.set()
            writer.join()
            assert failures == []
            assert retention.mismatched_hours(s) == []
            total = s.execute(select(func.sum(rollups.HOURLY.c.requests))).scalar()
            assert total == 40 + written[0]
    finally:
        for e in engines:
            e.dispose()
