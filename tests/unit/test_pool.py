"""Real-key pools: round robin over usable keys, and health from what upstream answers say
about the key (the state machine runs on an injected clock)."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from addon.keycache import RealKeyInfo
from addon.pool import Health, Policy, Pool, describe_unavailable
from addon.providers.key_health import Answer

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
OK = Answer("ok")
REJECTED = Answer("key_rejected", "401 invalid_api_key")
REFUSED = Answer("refused", "403 model_not_found")
SERVER_ERROR = Answer("unknown", "500 server_error")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def pool(clock: Clock) -> Pool:
    return Pool(Policy(), clock)


def real(
    key_id: int,
    *,
    provider: str = "openai",
    status: str = "healthy",
    cooldown_until: datetime | None = None,
    auth_failures: int = 0,
    health_at: datetime | None = None,
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
        health_at=health_at,
    )


def rate_limited(seconds: float | None) -> Answer:
    return Answer("rate_limited", "429 rate_limit_exceeded", seconds)


def test_round_robin_spreads_requests_over_every_healthy_key(pool: Pool) -> None:
    keys = (real(1), real(2), real(3))
    picks = [pool.pick(keys, T0) for _ in range(9)]
    assert Counter(k.id for k in picks if k) == {1: 3, 2: 3, 3: 3}
    assert all(a != b for a, b in itertools.pairwise(picks))


def test_empty_pool_gives_nothing(pool: Pool) -> None:
    assert pool.pick((), T0) is None
    assert pool.soonest_retry((), T0) is None


def test_round_robin_holds_per_provider_when_providers_interleave(pool: Pool) -> None:
    openai_keys = (real(1), real(2))
    anthropic_keys = (real(3, provider="anthropic"), real(4, provider="anthropic"))
    openai_picks = []
    for _ in range(6):
        openai_picks.append(pool.pick(openai_keys, T0))
        pool.pick(anthropic_keys, T0)
    assert {k.id for k in openai_picks if k} == {1, 2}


# --- 429: a cooldown for the time the provider asked ----------------------------------------


def test_429_cools_the_key_for_its_retry_after(pool: Pool, clock: Clock) -> None:
    k = real(1)
    health = pool.report(k, rate_limited(12.0))
    assert (health.status, health.cooldown_until) == ("cooling", T0 + timedelta(seconds=12))
    assert health.last_error == "429 rate_limit_exceeded"
    assert pool.pick((k,), clock.advance(11)) is None
    assert pool.pick((k,), clock.advance(1)) is k  # usable again, for everyone, once it is over
    assert pool.pick((k,), clock.now) is k


def test_429_without_retry_after_cools_for_the_default(pool: Pool) -> None:
    health = pool.report(real(1), rate_limited(None))
    assert health.cooldown_until == T0 + timedelta(seconds=30)


def test_429_does_not_count_as_a_key_failure_and_ends_a_streak(pool: Pool, clock: Clock) -> None:
    k = real(1)
    for _ in range(4):
        pool.report(k, rate_limited(1.0))
    assert pool.health(k).auth_failures == 0
    pool.report(k, REJECTED)
    assert pool.health(k).auth_failures == 1
    clock.advance(30)
    assert pool.pick((k,), clock.now, "trial") is k
    pool.report(k, rate_limited(5.0), "trial")  # the key authenticates: it only has to wait
    assert (pool.health(k).status, pool.health(k).auth_failures) == ("cooling", 0)


def test_the_other_keys_serve_while_one_cools_down(pool: Pool) -> None:
    a, b = real(1), real(2)
    pool.report(a, rate_limited(60.0))
    assert {pool.pick((a, b), T0) for _ in range(4)} == {b}


# --- which answers count: only those about the key ------------------------------------------


@pytest.mark.parametrize("answer", [REFUSED, SERVER_ERROR, Answer("refused", "404 not_found")])
def test_answers_about_the_request_leave_a_healthy_key_alone(pool: Pool, answer: Answer) -> None:
    k = real(1)
    for _ in range(10):
        assert pool.report(k, answer) == Health("healthy", None, 0)
    assert pool.pick((k,), T0) is k


def test_a_key_rejection_takes_the_key_out_for_the_first_backoff(pool: Pool) -> None:
    k = real(1)
    health = pool.report(k, REJECTED)
    assert (health.status, health.auth_failures) == ("cooling", 1)
    assert health.cooldown_until == T0 + timedelta(seconds=30)
    assert health.last_error == "401 invalid_api_key"
    assert pool.pick((k,), T0) is None


def test_rejections_of_requests_already_in_flight_count_once(pool: Pool, clock: Clock) -> None:
    """Ten requests on the way when the key went bad: one failure, not ten, not disabled."""
    k = real(1)
    for _ in range(10):
        pool.report(k, REJECTED)
        clock.advance(0.1)
    health = pool.health(k)
    assert (health.status, health.auth_failures) == ("cooling", 1)
    assert health.cooldown_until == T0 + timedelta(seconds=30)


# --- half-open: one trial request after the backoff ----------------------------------------


def test_after_the_backoff_exactly_one_trial_request_goes_to_the_key(
    pool: Pool, clock: Clock
) -> None:
    k, other = real(1), real(2)
    pool.report(k, REJECTED)
    clock.advance(29)
    assert {pool.pick((k, other), clock.now, f"r{i}") for i in range(3)} == {other}
    clock.advance(1)
    assert pool.pick((k, other), clock.now, "trial") is k  # the trial comes first
    assert {pool.pick((k, other), clock.now, f"r{i}") for i in range(5)} == {other}
    assert pool.pick((k,), clock.now, "alone") is None  # its slot is taken


def test_an_accepted_trial_brings_the_key_back(pool: Pool, clock: Clock) -> None:
    k = real(1)
    pool.report(k, REJECTED)
    clock.advance(30)
    assert pool.pick((k,), clock.now, "trial") is k
    healed = pool.report(k, OK, "trial")
    assert (healed.status, healed.auth_failures, healed.cooldown_until) == ("healthy", 0, None)
    assert [pool.pick((k,), clock.now) for _ in range(3)] == [k, k, k]


def test_a_trial_the_provider_refuses_for_the_request_still_proves_the_key(
    pool: Pool, clock: Clock
) -> None:
    k = real(1)
    pool.report(k, REJECTED)
    clock.advance(30)
    pool.pick((k,), clock.now, "trial")
    assert pool.report(k, REFUSED, "trial").status == "healthy"


def test_a_refusal_outside_the_trial_does_not_revive_a_rejected_key(
    pool: Pool, clock: Clock
) -> None:
    k = real(1)
    pool.report(k, REJECTED)
    assert pool.report(k, REFUSED, "in-flight").key_rejected


def test_a_success_seen_while_cooling_proves_the_key(pool: Pool) -> None:
    k = real(1)
    pool.report(k, REJECTED)
    assert pool.report(k, OK, "in-flight").status == "healthy"


def test_a_rejected_trial_doubles_the_backoff(pool: Pool, clock: Clock) -> None:
    k = real(1)
    pool.report(k, REJECTED)
    waits = []
    for i in range(5):
        until = pool.health(k).cooldown_until
        assert until is not None
        waits.append((until - clock.now).total_seconds())
        clock.now = until
        assert pool.pick((k,), clock.now, f"trial{i}") is k
        pool.report(k, REJECTED, f"trial{i}")
    assert waits == [30, 60, 120, 240, 480]
    assert pool.health(k).auth_failures == 6


def test_the_backoff_is_capped() -> None:
    policy = Policy()
    assert policy.backoff(1) == timedelta(seconds=30)
    assert policy.backoff(7) == timedelta(minutes=30)
    assert policy.backoff(50) == timedelta(minutes=30)


def test_a_trial_that_ends_without_an_answer_frees_the_slot(pool: Pool, clock: Clock) -> None:
    k = real(1)
    pool.report(k, REJECTED)
    clock.advance(30)
    assert pool.pick((k,), clock.now, "trial") is k
    pool.release(k, "someone-else")
    assert pool.pick((k,), clock.now, "second") is None
    pool.release(k, "trial")  # upstream unreachable, client gone, rejected by the gateway
    assert pool.pick((k,), clock.now, "second") is k


def test_a_server_error_on_the_trial_frees_the_slot_and_counts_nothing(
    pool: Pool, clock: Clock
) -> None:
    k = real(1)
    pool.report(k, REJECTED)
    clock.advance(30)
    pool.pick((k,), clock.now, "trial")
    assert pool.report(k, SERVER_ERROR, "trial").auth_failures == 1
    assert pool.pick((k,), clock.now, "next") is k


def test_a_trial_that_never_reports_back_expires(pool: Pool, clock: Clock) -> None:
    k = real(1)
    pool.report(k, REJECTED)
    clock.advance(30)
    pool.pick((k,), clock.now, "lost")
    assert pool.pick((k,), clock.advance(60), "next") is None
    assert pool.pick((k,), clock.advance(600), "next") is k


# --- disabled: only after repeated rejections over time ------------------------------------


def _fail_trials(pool: Pool, clock: Clock, k: RealKeyInfo, n: int) -> None:
    for i in range(n):
        until = pool.health(k).cooldown_until
        assert until is not None
        clock.now = until
        assert pool.pick((k,), clock.now, f"t{i}") is k
        pool.report(k, REJECTED, f"t{i}")


def test_a_key_is_disabled_only_after_repeated_rejections_over_an_hour(
    pool: Pool, clock: Clock
) -> None:
    k = real(1)
    pool.report(k, REJECTED)
    _fail_trials(pool, clock, k, 6)
    assert pool.health(k).status == "cooling"  # 7 rejections, 32 minutes: still retried
    _fail_trials(pool, clock, k, 1)
    health = pool.health(k)
    assert (health.status, health.auth_failures) == ("disabled", 8)
    assert clock.now - T0 >= timedelta(hours=1)
    assert pool.pick((k,), clock.now + timedelta(days=365)) is None
    assert pool.soonest_retry((k,), clock.now) is None  # waiting will not help


def test_a_burst_of_rejections_never_disables(pool: Pool, clock: Clock) -> None:
    k = real(1)
    for _ in range(100):
        pool.report(k, REJECTED, "in-flight")
    assert pool.health(k).status == "cooling"


def test_a_disabled_key_is_not_revived_by_a_success_seen_elsewhere(pool: Pool) -> None:
    k = real(1, status="disabled", auth_failures=8)
    pool.report(k, OK)
    assert pool.health(k).status == "disabled"
    assert pool.pick((k,), T0) is None


def test_a_success_resets_the_count_so_the_next_streak_starts_over(
    pool: Pool, clock: Clock
) -> None:
    k = real(1)
    pool.report(k, REJECTED)
    _fail_trials(pool, clock, k, 3)
    pool.report(k, OK)
    assert pool.report(k, REJECTED).cooldown_until == clock.now + timedelta(seconds=30)


# --- soonest retry ------------------------------------------------------------------------


def test_soonest_retry_is_the_nearest_next_try_in_whole_seconds(pool: Pool) -> None:
    keys = (
        real(1, status="cooling", cooldown_until=T0 + timedelta(seconds=40)),
        real(2, status="cooling", cooldown_until=T0 + timedelta(seconds=10.2), auth_failures=1),
        real(3, status="disabled", cooldown_until=T0 + timedelta(seconds=1)),
    )
    assert pool.pick(keys, T0) is None
    assert pool.soonest_retry(keys, T0) == 11


def test_soonest_retry_is_at_least_one_second(pool: Pool) -> None:
    k = real(1, status="cooling", cooldown_until=T0 + timedelta(milliseconds=10))
    assert pool.soonest_retry((k,), T0) == 1


def test_a_past_rate_limit_cooldown_serves_again(pool: Pool) -> None:
    k = real(1, status="cooling", cooldown_until=T0 - timedelta(seconds=5))
    assert pool.pick((k,), T0) == k


# --- stored health (from the database, written by any process) merged with local ---------


def test_stored_health_applies_when_nothing_was_seen_locally(pool: Pool) -> None:
    until = T0 + timedelta(seconds=20)
    k = real(1, status="cooling", cooldown_until=until, auth_failures=1)
    assert pool.health(k) == Health("cooling", until, 1)
    assert pool.pick((k,), T0) is None
    assert pool.pick((k,), until, "trial") is k  # another process's rejection: half-open here


def test_a_newer_stored_health_wins_over_a_local_view(pool: Pool, clock: Clock) -> None:
    """An operator's ``providers enable`` (or another process) wrote after we looked."""
    k = real(1, health_at=T0 - timedelta(minutes=1))
    pool.report(k, REJECTED)
    assert pool.pick((k,), clock.now) is None
    enabled = replace(k, health_at=clock.advance(1))
    assert pool.health(enabled).status == "healthy"
    assert pool.pick((enabled,), clock.now) is enabled


def test_an_older_stored_health_does_not_hide_a_newer_local_view(pool: Pool, clock: Clock) -> None:
    k = real(1, health_at=T0 - timedelta(minutes=1))
    pool.report(k, REJECTED)
    assert pool.health(k).key_rejected  # the write of our view is still on its way


def test_rejections_seen_by_another_process_count_towards_the_backoff(
    pool: Pool, clock: Clock
) -> None:
    stored = real(1, status="cooling", auth_failures=3, cooldown_until=T0)
    assert pool.pick((stored,), T0, "trial") is stored
    health = pool.report(stored, REJECTED, "trial")
    assert (health.auth_failures, health.cooldown_until) == (4, T0 + timedelta(seconds=240))


def test_report_returns_what_health_then_shows(pool: Pool) -> None:
    k = real(1)
    reported = pool.report(k, REJECTED)
    assert pool.health(k) == reported


# --- the 503's message --------------------------------------------------------------------


def test_the_503_says_how_many_keys_why_they_are_out_and_when_the_next_try_is(
    pool: Pool, clock: Clock
) -> None:
    a, b, c = real(1), real(2), real(3, status="disabled", auth_failures=8)
    pool.report(a, REJECTED)
    pool.report(b, rate_limited(10.0))
    clock.advance(5)
    message = describe_unavailable("openai", (a, b, c), pool, clock.now)
    assert message == (
        "No usable openai API key in tollkeeper: all 3 keys are out: "
        "rejected by the provider (401 invalid_api_key), next try in 25 s; "
        "rate-limited by the provider (429 rate_limit_exceeded), usable again in 5 s; "
        "disabled after 8 rejections until an operator enables it."
    )
    assert "openai-1" not in message  # labels are the operator's, not the tenants'


def test_the_503_names_a_trial_in_flight_and_an_empty_pool(pool: Pool, clock: Clock) -> None:
    k = real(1)
    pool.report(k, REJECTED)
    clock.advance(30)
    pool.pick((k,), clock.now, "trial")
    assert describe_unavailable("anthropic", (k,), pool, clock.now) == (
        "No usable anthropic API key in tollkeeper: its only key is out: rejected by the "
        "provider (401 invalid_api_key), a trial request is in flight."
    )
    assert describe_unavailable("gemini", (), pool, T0) == (
        "No gemini API key is configured in tollkeeper."
    )
