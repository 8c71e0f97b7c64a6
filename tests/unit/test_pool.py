"""Real-key pools: round robin over usable keys, and health from upstream answers."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from addon.keycache import RealKeyInfo
from addon.pool import Health, Pool

SLACK = timedelta(seconds=5)  # report() reads the clock itself


def real(
    key_id: int,
    *,
    provider: str = "openai",
    status: str = "healthy",
    cooldown_until: datetime | None = None,
    auth_failures: int = 0,
) -> RealKeyInfo:
    return RealKeyInfo(
        id=key_id,
        provider=provider,
        label=f"{provider}-{key_id}",
        base_url=None,
        ciphertext="x",
        env_ref=None,
        status=status,
        cooldown_until=cooldown_until,
        auth_failures=auth_failures,
    )


def now() -> datetime:
    return datetime.now(UTC)


def test_round_robin_spreads_requests_over_every_healthy_key() -> None:
    pool, keys = Pool(), (real(1), real(2), real(3))
    picks = [pool.pick(keys, now()) for _ in range(9)]
    assert Counter(k.id for k in picks if k) == {1: 3, 2: 3, 3: 3}
    assert all(a != b for a, b in itertools.pairwise(picks))


def test_empty_pool_gives_nothing() -> None:
    assert Pool().pick((), now()) is None
    assert Pool().soonest_retry((), now()) is None


def test_round_robin_holds_per_provider_when_providers_interleave() -> None:
    pool = Pool()
    openai_keys = (real(1), real(2))
    anthropic_keys = (real(3, provider="anthropic"), real(4, provider="anthropic"))
    openai_picks = []
    for _ in range(6):
        openai_picks.append(pool.pick(openai_keys, now()))
        pool.pick(anthropic_keys, now())
    assert {k.id for k in openai_picks if k} == {1, 2}


def test_429_cools_the_key_for_its_retry_after() -> None:
    pool, k = Pool(), real(1)
    before = now()
    health = pool.report(k, 429, 12.0)
    assert health.status == "cooling"
    assert health.last_error == "upstream 429"
    assert health.cooldown_until is not None
    assert before + timedelta(seconds=12) <= health.cooldown_until <= now() + timedelta(seconds=12)
    assert pool.pick((k,), now()) is None
    assert pool.pick((k,), health.cooldown_until) is k  # usable again once the time is up


def test_429_without_retry_after_cools_for_the_default() -> None:
    pool, k = Pool(), real(1)
    health = pool.report(k, 429, None)
    assert health.cooldown_until is not None
    expected = now() + timedelta(seconds=30)
    assert expected - SLACK <= health.cooldown_until <= expected


def test_429_does_not_count_as_an_auth_failure() -> None:
    pool, k = Pool(), real(1)
    for _ in range(4):
        pool.report(k, 429, 1.0)
    assert pool.health(k).status == "cooling"
    assert pool.health(k).auth_failures == 0


def test_the_other_keys_serve_while_one_cools_down() -> None:
    pool, a, b = Pool(), real(1), real(2)
    pool.report(a, 429, 60.0)
    assert {pool.pick((a, b), now()) for _ in range(4)} == {b}


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failure_cools_the_key_for_five_minutes(status: int) -> None:
    pool, k = Pool(), real(1)
    health = pool.report(k, status, None)
    assert (health.status, health.auth_failures) == ("cooling", 1)
    assert health.last_error == f"upstream {status}"
    assert health.cooldown_until is not None
    expected = now() + timedelta(minutes=5)
    assert expected - SLACK <= health.cooldown_until <= expected
    assert pool.pick((k,), now()) is None


def test_three_consecutive_auth_failures_disable_the_key_for_good() -> None:
    pool, k = Pool(), real(1)
    states = [pool.report(k, 401, None).status for _ in range(3)]
    assert states == ["cooling", "cooling", "disabled"]
    far_future = now() + timedelta(days=365)
    assert pool.pick((k,), far_future) is None
    assert pool.soonest_retry((k,), now()) is None  # waiting will not help


def test_a_success_resets_the_auth_failure_count() -> None:
    pool, k = Pool(), real(1)
    pool.report(k, 401, None)
    pool.report(k, 401, None)
    healed = pool.report(k, 200, None)
    assert healed == Health("healthy", None, 0, None)
    assert pool.pick((k,), now()) is k
    assert pool.report(k, 401, None).status == "cooling"  # counting starts again


def test_success_on_a_healthy_key_changes_nothing() -> None:
    pool, k = Pool(), real(1)
    assert pool.report(k, 200, None) == pool.health(k) == Health("healthy", None, 0)


@pytest.mark.parametrize("status", [400, 404, 500, 502, 529])
def test_other_upstream_answers_leave_health_alone(status: int) -> None:
    pool, k = Pool(), real(1)
    pool.report(k, 401, None)
    before = pool.health(k)
    assert pool.report(k, status, None) == before
    assert pool.health(k) == before


def test_a_disabled_key_is_not_revived_by_a_success_seen_elsewhere() -> None:
    pool, k = Pool(), real(1, status="disabled", auth_failures=3)
    pool.report(k, 200, None)
    assert pool.health(k).status == "disabled"
    assert pool.pick((k,), now()) is None


def test_soonest_retry_is_the_nearest_cooldown_in_whole_seconds() -> None:
    t = now()
    keys = (
        real(1, status="cooling", cooldown_until=t + timedelta(seconds=40)),
        real(2, status="cooling", cooldown_until=t + timedelta(seconds=10.2)),
        real(3, status="disabled", cooldown_until=t + timedelta(seconds=1)),
    )
    pool = Pool()
    assert pool.pick(keys, t) is None
    assert pool.soonest_retry(keys, t) == 11


def test_soonest_retry_is_at_least_one_second() -> None:
    t = now()
    k = real(1, status="cooling", cooldown_until=t + timedelta(milliseconds=10))
    assert Pool().soonest_retry((k,), t) == 1


def test_soonest_retry_ignores_cooldowns_in_the_past() -> None:
    t = now()
    k = real(1, status="cooling", cooldown_until=t - timedelta(seconds=5))
    assert Pool().soonest_retry((k,), t) is None
    assert Pool().pick((k,), t) == k


# --- stored health (from the database, written by any process) merged with local ---------


def test_stored_health_applies_when_nothing_was_seen_locally() -> None:
    t = now()
    k = real(1, status="cooling", cooldown_until=t + timedelta(seconds=20), auth_failures=1)
    pool = Pool()
    assert pool.health(k) == Health("cooling", t + timedelta(seconds=20), 1)
    assert pool.pick((k,), t) is None


def test_stored_disabled_wins_over_a_local_healthy_view() -> None:
    pool = Pool()
    pool.report(real(1), 429, 1.0)  # local entry exists
    pool.report(real(1), 200, None)  # and is healthy
    stored = real(1, status="disabled", auth_failures=3)
    assert pool.health(stored).status == "disabled"
    assert pool.pick((stored,), now() + timedelta(days=1)) is None


def test_the_later_cooldown_of_stored_and_local_wins() -> None:
    pool = Pool()
    local = pool.report(real(1), 429, 5.0)
    assert local.cooldown_until is not None
    later = local.cooldown_until + timedelta(seconds=60)
    stored = real(1, status="cooling", cooldown_until=later)
    assert pool.health(stored).cooldown_until == later
    earlier = real(1, status="cooling", cooldown_until=now() - timedelta(seconds=60))
    assert pool.health(earlier).cooldown_until == local.cooldown_until


def test_auth_failures_seen_by_another_process_count_towards_disabling() -> None:
    pool = Pool()
    stored = real(1, status="cooling", auth_failures=2, cooldown_until=now())
    assert pool.report(stored, 401, None).status == "disabled"


def test_report_returns_what_health_then_shows() -> None:
    pool, k = Pool(), real(1)
    reported = pool.report(k, 401, None)
    assert pool.health(k) == Health(
        reported.status, reported.cooldown_until, reported.auth_failures
    )
