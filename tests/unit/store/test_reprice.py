"""Repricing stored usage records at the current prices (both databases).

Expected costs are computed here with Decimal arithmetic from the token counts and the rates
(USD per million tokens), independently of ``addon.pricing.cost``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlmodel import Session, col, select

from addon.pricing.codec import price_from_json
from addon.pricing.table import PriceBook
from addon.store import reprice as reprice_mod
from addon.store import usage_repo
from addon.store.db import open_store
from addon.store.models import AuditEvent, KeyDailySpend, UsageRecord
from addon.store.reprice import like_pattern, reprice

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
ACME = {
    "input": "1.5",
    "output": "6",
    "cached_input": "0.15",
    "cache_write_5m": "1.875",
    "cache_write_1h": "3",
    "reasoning": "8",
}
ACME_NEW = {**ACME, "input": "2", "output": "7.25"}


def book(overrides: dict[str, dict[str, str]] | None = None) -> PriceBook:
    """The bundled table plus overrides given as flat JSON rates."""
    prices = {model: price_from_json(p) for model, p in (overrides or {}).items()}
    return PriceBook.bundled().with_overrides(prices)


def rec(**fields: Any) -> UsageRecord:
    base: dict[str, Any] = {
        "request_id": uuid.uuid4().hex,
        "created_at": T0,
        "provider": "openai",
        "project": "alpha",
        "virtual_key_id": "key0000001",
        "model": "acme-chat",
        "input_tokens": 1_000,
        "output_tokens": 100,
        "cost_picousd": None,
    }
    base.update(fields)
    return UsageRecord(**base)


def expected_picousd(rates: dict[str, str], record: UsageRecord, writes_1h: int = 0) -> int:
    """Independent cost: tokens x USD-per-million rates, as exact picodollars."""
    r = {k: Decimal(v) for k, v in rates.items()}
    uncached = record.input_tokens - record.cached_input_tokens - record.cache_write_tokens
    text_out = record.output_tokens - record.reasoning_tokens
    usd = (
        uncached * r["input"]
        + record.cached_input_tokens * r["cached_input"]
        + (record.cache_write_tokens - writes_1h) * r["cache_write_5m"]
        + writes_1h * r["cache_write_1h"]
        + text_out * r["output"]
        + record.reasoning_tokens * r["reasoning"]
    ) / Decimal(10**6)
    picousd = usd * 10**12
    assert picousd == picousd.to_integral_value(), "choose token counts with an exact cost"
    return int(picousd)


def store(session: Session, *records: UsageRecord) -> list[int]:
    """Insert (and settle into the budget counters) as the gateway's writer does."""
    usage_repo.insert_records(session=session, records=list(records))
    ids = [r.request_id for r in records]
    rows = session.exec(select(UsageRecord).where(col(UsageRecord.request_id).in_(ids)))
    by_request = {r.request_id: r.id for r in rows}
    return [by_request[i] for i in ids]


def costs(session: Session) -> dict[str, int | None]:
    session.expire_all()
    return {r.request_id: r.cost_picousd for r in session.exec(select(UsageRecord))}


def spend(session: Session) -> dict[tuple[str, str], int]:
    session.expire_all()
    return {(s.virtual_key_id, s.day): s.spent_picousd for s in session.exec(select(KeyDailySpend))}


def spend_from_records(session: Session) -> dict[tuple[str, str], int]:
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for r in session.exec(select(UsageRecord)):
        if r.virtual_key_id:
            totals[(r.virtual_key_id, r.created_at.strftime("%Y-%m-%d"))] += r.cost_picousd or 0
    return dict(totals)


def events(session: Session) -> list[AuditEvent]:
    return list(session.exec(select(AuditEvent).where(AuditEvent.action == "usage.repriced")))


# --- costs --------------------------------------------------------------------------------


def test_a_changed_price_changes_every_cost_exactly(session: Session) -> None:
    records = [
        rec(request_id="plain", input_tokens=1_000, output_tokens=100, cost_picousd=1),
        rec(
            request_id="cached",
            input_tokens=12_345,
            cached_input_tokens=2_000,
            cache_write_tokens=3_000,
            output_tokens=777,
            reasoning_tokens=300,
            extras_json=json.dumps({"cache_write_1h_tokens": 1_000}),
            cost_picousd=2,
        ),
    ]
    store(session, *records)
    summary = reprice(session=session, book=book({"acme-chat": ACME_NEW}), actor="pat")
    got = costs(session)
    assert got["plain"] == expected_picousd(ACME_NEW, records[0])
    assert got["cached"] == expected_picousd(ACME_NEW, records[1], writes_1h=1_000)
    assert (summary.examined, summary.repriced, summary.newly_priced) == (2, 2, 0)
    assert summary.cost_before_picousd == 3
    assert summary.cost_after_picousd == got["plain"] + got["cached"]  # type: ignore[operator]


def test_unpriced_records_get_a_cost_once_their_model_has_a_price(session: Session) -> None:
    record = rec(request_id="a", input_tokens=2_000, output_tokens=50, cost_picousd=None)
    zero = rec(request_id="z", input_tokens=0, output_tokens=0, cost_picousd=None)
    store(session, record, zero)
    summary = reprice(session=session, book=book({"acme-chat": ACME}), actor="pat")
    assert costs(session) == {"a": expected_picousd(ACME, record), "z": 0}
    assert (summary.repriced, summary.newly_priced, summary.still_unpriced) == (2, 2, 0)
    assert summary.cost_before_picousd == 0


def test_an_unknown_model_stays_unpriced_and_a_priced_one_keeps_its_cost(
    session: Session,
) -> None:
    store(
        session,
        rec(request_id="unknown", model="mystery-9000", cost_picousd=None),
        rec(request_id="no-model", model=None, input_tokens=0, output_tokens=0, cost_picousd=0),
        rec(request_id="was-priced", model="mystery-9000", cost_picousd=12_345),
    )
    summary = reprice(session=session, book=book(), actor="pat")
    assert costs(session) == {"unknown": None, "no-model": 0, "was-priced": 12_345}
    assert (summary.still_unpriced, summary.kept_without_price, summary.repriced) == (1, 2, 0)
    assert (summary.cost_before_picousd, summary.cost_after_picousd) == (12_345, 12_345)


def test_the_service_tier_in_extras_picks_the_flex_price(session: Session) -> None:
    flex = {**ACME, "flex_input": "0.75", "flex_output": "3"}
    record = rec(request_id="f", extras_json=json.dumps({"service_tier": "flex"}))
    store(session, record)
    reprice(session=session, book=book({"acme-chat": flex}), actor="pat")
    flex_rates = {**ACME, "input": "0.75", "output": "3"}
    assert costs(session)["f"] == expected_picousd(flex_rates, record)


def test_bundled_prices_apply_to_provider_models(session: Session) -> None:
    record = rec(request_id="g", model="gpt-4o-2024-08-06", input_tokens=4_000, output_tokens=20)
    store(session, record)
    reprice(session=session, book=book(), actor="pat")
    rates = {"input": "2.5", "output": "10", "cached_input": "1.25"}
    rates |= {"cache_write_5m": "2.5", "cache_write_1h": "2.5", "reasoning": "10"}
    assert costs(session)["g"] == expected_picousd(rates, record)


def test_media_records_are_repriced_from_their_media_usage(session: Session) -> None:
    media = {"kind": "transcription", "seconds": "61.5"}
    whisper = rec(
        request_id="w",
        model="whisper-1",
        input_tokens=0,
        output_tokens=0,
        cost_picousd=1,
        extras_json=json.dumps({"media": media}),
    )
    store(session, whisper)
    reprice(session=session, book=book(), actor="pat")
    assert costs(session)["w"] == 615 * 10**7  # 61.5 s x $0.0001 per second


def test_an_unmetered_endpoint_stays_unpriced_whatever_its_model_costs(session: Session) -> None:
    job = rec(
        request_id="ft",
        model="gpt-4o-mini",
        input_tokens=0,
        output_tokens=0,
        extras_json=json.dumps({"unpriced": "endpoint_not_metered"}),
    )
    store(session, job)
    summary = reprice(session=session, book=book(), actor="pat")
    assert costs(session)["ft"] is None  # not "$0" because gpt-4o-mini has a token price
    assert summary.still_unpriced == 1


# --- ranges ---------------------------------------------------------------------------------


@pytest.fixture
def spread(session: Session) -> Session:
    store(
        session,
        rec(request_id="d1", created_at=T0, cost_picousd=1),
        rec(request_id="d2", created_at=T0 + timedelta(days=1), cost_picousd=1),
        rec(request_id="d3", created_at=T0 + timedelta(days=2), cost_picousd=1),
        rec(request_id="other", model="acme-embed", created_at=T0 + timedelta(days=1)),
        rec(request_id="under", model="acme_chat", created_at=T0 + timedelta(days=1)),
    )
    return session


@pytest.mark.parametrize(
    ("kwargs", "changed"),
    [
        ({"since": T0 + timedelta(days=1)}, {"d2", "d3", "other", "under"}),
        ({"until": T0 + timedelta(days=1)}, {"d1"}),  # until is exclusive
        ({"since": T0 + timedelta(hours=1), "until": T0 + timedelta(days=2)},
         {"d2", "other", "under"}),
        ({"model_glob": "ACME-CH*"}, {"d1", "d2", "d3"}),
        ({"model_glob": "acme_chat"}, {"under"}),  # "_" is a literal, not LIKE's wildcard
        ({"model_glob": "acme-[ce]*"}, {"d1", "d2", "d3", "other"}),
        ({"model_glob": "acme-?mbed"}, {"other"}),
        ({"model_glob": "nothing*"}, set()),
    ],
)  # fmt: skip
def test_only_records_in_range_are_repriced(
    spread: Session, kwargs: dict[str, Any], changed: set[str]
) -> None:
    before = costs(spread)
    prices = book({"acme-chat": ACME, "acme_chat": ACME, "acme-embed": ACME})
    summary = reprice(session=spread, book=prices, actor="pat", **kwargs)
    after = costs(spread)
    assert {k for k in after if after[k] != before[k]} == changed
    assert summary.examined == summary.repriced == len(changed)


def test_dry_run_counts_and_changes_nothing(spread: Session) -> None:
    before, spent = costs(spread), spend(spread)
    prices = book({"acme-chat": ACME, "acme-embed": ACME})
    summary = reprice(session=spread, book=prices, actor="pat", dry_run=True)
    assert (summary.examined, summary.repriced, summary.newly_priced) == (5, 4, 1)
    assert costs(spread) == before and spend(spread) == spent
    assert events(spread) == []


# --- budgets, batches, audit -------------------------------------------------------------------


def test_key_daily_spend_stays_the_sum_of_record_costs(session: Session) -> None:
    days = [T0 + timedelta(hours=h) for h in (0, 13, 14, 30, 50)]  # midnight crossings in UTC
    records = [
        rec(request_id=f"r{i}", virtual_key_id=f"key000000{i % 3}", created_at=when,
            input_tokens=1_000 * (i + 1), output_tokens=10 * i,
            cost_picousd=None if i % 4 == 0 else 5_000 * i)
        for i, when in enumerate(days * 3)
    ] + [rec(request_id="keyless", virtual_key_id=None, cost_picousd=7)]  # fmt: skip
    store(session, *records)
    assert spend(session) == spend_from_records(session)
    summary = reprice(session=session, book=book({"acme-chat": ACME}), actor="pat", batch_size=4)
    assert summary.examined == len(records) and summary.repriced == len(records)
    assert spend(session) == spend_from_records(session)
    assert summary.spend_days_adjusted == len(spend(session))
    got = costs(session)
    assert all(got[r.request_id] == expected_picousd(ACME, r) for r in records)


def test_a_second_run_changes_nothing(session: Session) -> None:
    store(session, *(rec(request_id=f"r{i}", input_tokens=100 * i) for i in range(7)))
    first = reprice(session=session, book=book({"acme-chat": ACME}), actor="pat", batch_size=3)
    after_first, spent = costs(session), spend(session)
    second = reprice(session=session, book=book({"acme-chat": ACME}), actor="pat", batch_size=3)
    assert first.repriced == 7
    assert (second.examined, second.repriced, second.unchanged) == (7, 0, 7)
    assert second.cost_before_picousd == second.cost_after_picousd == first.cost_after_picousd
    assert costs(session) == after_first and spend(session) == spent


def test_two_runs_at_once_apply_each_change_once(
    session: Session, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store(session, *(rec(request_id=f"r{i}", input_tokens=100 * (i + 1)) for i in range(10)))
    read_batch = reprice_mod._batch

    def slow_batch(*args: Any, **kwargs: Any) -> Any:
        rows = read_batch(*args, **kwargs)
        time.sleep(0.02)  # the other run reads now, unless the batch is locked
        return rows

    monkeypatch.setattr(reprice_mod, "_batch", slow_batch)
    engines = [open_store(db_url) for _ in range(2)]
    start, results = threading.Barrier(2), []

    def run(engine: Any) -> None:
        with Session(engine) as s:
            s.connection()  # connected before the race starts
            start.wait()
            prices = book({"acme-chat": ACME})
            results.append(reprice(session=s, book=prices, actor="pat", batch_size=1))

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e in engines:
        e.dispose()
    assert len(results) == 2 and sum(r.repriced for r in results) == 10
    assert spend(session) == spend_from_records(session)


def test_a_run_is_audited_with_its_range_and_counts(session: Session) -> None:
    store(session, rec(request_id="a"), rec(request_id="b", model="mystery-9000"))
    reprice(
        session=session,
        book=book({"acme-chat": ACME}),
        actor="pat",
        since=T0,
        until=T0 + timedelta(days=1),
        model_glob="*",
    )
    (event,) = events(session)
    assert (event.actor, event.action) == ("pat", "usage.repriced")
    assert event.target == (
        "usage records since 2026-03-01T10:00:00Z, until 2026-03-02T10:00:00Z, model *"
    )
    details = json.loads(event.details_json)
    assert details["examined"] == 2 and details["repriced"] == 1
    assert details["newly_priced"] == 1 and details["still_unpriced"] == 1
    assert details["cost_before_usd"] == "0"
    assert details["since"] == "2026-03-01T10:00:00Z" and details["model"] == "*"


def test_an_unfiltered_run_names_all_records(session: Session) -> None:
    reprice(session=session, book=book(), actor="pat")
    (event,) = events(session)
    assert event.target == "usage records (all)"
    assert json.loads(event.details_json)["examined"] == 0


def test_a_failing_batch_leaves_everything_as_it_was(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    store(session, *(rec(request_id=f"r{i}", cost_picousd=i) for i in range(4)))
    before, spent = costs(session), spend(session)
    real = reprice_mod.current_cost
    calls = iter(range(100))

    def flaky(row: Any, price_book: PriceBook) -> int | None:
        if next(calls) == 3:
            raise ValueError("boom")
        return real(row, price_book)

    monkeypatch.setattr(reprice_mod, "current_cost", flaky)
    with pytest.raises(ValueError, match="boom"):
        reprice(session=session, book=book({"acme-chat": ACME}), actor="pat", batch_size=2)
    after = costs(session)
    assert [after[f"r{i}"] != before[f"r{i}"] for i in range(4)] == [True, True, False, False]
    assert spend(session) == spend_from_records(session) != spent
    assert events(session) == []


# --- pure helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("glob", "like"),
    [
        ("gpt-4o*", "gpt-4o%"),
        ("gpt-?", "gpt-_"),
        ("a_b%c\\d", "a\\_b\\%c\\\\d"),
        ("claude-[hs]*", "claude-_%"),
        ("x[!ab]y", "x_y"),
        ("x[]]y", "x_y"),
        ("open[bracket", "open[bracket"),
    ],
)
def test_like_pattern_matches_at_least_what_the_glob_matches(glob: str, like: str) -> None:
    assert like_pattern(glob) == like


def test_batch_size_must_be_positive(session: Session) -> None:
    with pytest.raises(ValueError, match="batch size"):
        reprice(session=session, book=book(), actor="pat", batch_size=0)
