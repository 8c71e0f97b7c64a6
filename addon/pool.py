"""Real-key pools: pick a usable key for a provider, and track key health.

Health follows what the provider says about the *credential* (``addon.providers.key_health``):

- A 429 cools the key for the time the provider asked (``retry-after``, default 30 s); then it
  serves again. A 429 proves the key authenticates: it ends a streak of key rejections.
- An answer that says the key itself is bad takes it out for a backoff that doubles with each
  rejection in a row (``Policy.key_retry``, 30 s, up to ``max_backoff``, 30 min). When the
  backoff is over the key is *half-open*: one trial request at a time goes to it (per gateway
  process). A trial the provider accepts — any answer that is not a key rejection and not a
  5xx — brings the key back; a rejected trial doubles the backoff.
- Only the first rejection and the trials' rejections count: requests that were already in
  flight when the key was taken out do not. So the ``disable_after`` (8) rejections that
  disable a key are spread over the backoffs between them (over an hour with the defaults),
  never a burst. A disabled key waits for ``tollkeeper providers enable``.
- Everything else (400, 403, 404, 5xx) leaves health alone.

Local observations apply at once and are persisted by the caller (the writer), so other
processes and ``providers list`` see them. What is stored wins over a local observation when
it is newer (``RealKeyInfo.health_at``): another process's view, or an operator's ``enable``.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from addon.keycache import RealKeyInfo
from addon.providers.key_health import Answer


@dataclass(frozen=True)
class Policy:
    key_retry: timedelta = timedelta(seconds=30)  # first backoff after a key rejection
    max_backoff: timedelta = timedelta(minutes=30)
    disable_after: int = 8  # rejections in a row (first one plus trials)
    rate_cooldown: timedelta = timedelta(seconds=30)  # a 429 without retry-after
    trial_lease: timedelta = timedelta(minutes=10)  # a trial that never reported back

    def backoff(self, failures: int) -> timedelta:
        steps = min(max(failures - 1, 0), 20)
        factor: int = 2**steps
        return min(self.max_backoff, self.key_retry * factor)


@dataclass(frozen=True)
class Health:
    status: str  # healthy | cooling | disabled
    cooldown_until: datetime | None
    auth_failures: int  # key rejections in a row; > 0 while cooling means "key rejected"
    last_error: str | None = None
    at: datetime | None = field(default=None, compare=False)  # when it was observed

    @property
    def key_rejected(self) -> bool:
        return self.status == "cooling" and self.auth_failures > 0


HEALTHY = Health("healthy", None, 0)


class Pool:
    def __init__(
        self, policy: Policy | None = None, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.policy = policy or Policy()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._local: dict[int, Health] = {}
        self._trials: dict[int, tuple[str, datetime]] = {}  # key id -> (holder, started)
        self._counters: dict[str, itertools.count[int]] = {}  # one rotation per provider
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return self._clock()

    def health(self, key: RealKeyInfo) -> Health:
        stored = Health(
            key.status, key.cooldown_until, key.auth_failures, key.last_error, key.health_at
        )
        local = self._local.get(key.id)
        if local is None:
            return stored
        if stored.at is not None and local.at is not None and stored.at >= local.at:
            return stored  # written later: ours persisted, another process's, or an enable
        return local

    # --- choosing a key ------------------------------------------------------------------

    def pick(
        self, keys: tuple[RealKeyInfo, ...], now: datetime, holder: str = ""
    ) -> RealKeyInfo | None:
        """A half-open key whose trial slot is free gets the request (``holder`` then owns
        the trial); else round robin over serving keys; None when none can serve."""
        with self._lock:
            for k in keys:
                if self._half_open(self.health(k), now) and not self._trial_busy(k.id, now):
                    self._trials[k.id] = (holder, now)
                    return k
            usable = [k for k in keys if self._serving(self.health(k), now)]
            if not usable:
                return None
            counter = self._counters.setdefault(usable[0].provider, itertools.count())
            return usable[next(counter) % len(usable)]

    def release(self, key: RealKeyInfo, holder: str) -> None:
        """The request ``holder`` ended without an answer that says anything about the key
        (rejected by the gateway, upstream unreachable, client gone): free its trial slot."""
        with self._lock:
            held = self._trials.get(key.id)
            if held is not None and held[0] == holder:
                del self._trials[key.id]

    @staticmethod
    def _serving(h: Health, now: datetime) -> bool:
        if h.status == "healthy":
            return True
        return h.status == "cooling" and h.auth_failures == 0 and _passed(h.cooldown_until, now)

    @staticmethod
    def _half_open(h: Health, now: datetime) -> bool:
        return h.key_rejected and _passed(h.cooldown_until, now)

    def _trial_busy(self, key_id: int, now: datetime) -> bool:
        trial = self._trials.get(key_id)
        return trial is not None and now - trial[1] < self.policy.trial_lease

    def soonest_retry(self, keys: tuple[RealKeyInfo, ...], now: datetime) -> int | None:
        """Whole seconds until a key may serve again; None when waiting will not help."""
        waits = []
        for h in map(self.health, keys):
            if h.status == "disabled":
                continue
            until = h.cooldown_until
            waits.append((until - now).total_seconds() if until is not None else 0.0)
        return max(1, math.ceil(min(waits))) if waits else None

    # --- what the provider said ------------------------------------------------------------

    def report(self, key: RealKeyInfo, answer: Answer, holder: str = "") -> Health:
        """Update a key's health from what an upstream answer says about it (``holder``: the
        request that got it, which may own the key's trial); returns the new health."""
        with self._lock:
            held = self._trials.get(key.id)
            trial = held is not None and held[0] == holder
            if trial:
                del self._trials[key.id]
                if answer.verdict == "unknown":  # a 5xx says nothing: the next may try again
                    return self.health(key)
            current = self.health(key)
            new = self._next(current, answer, trial)
            if new is None:
                return current
            self._local[key.id] = new
            return new

    def _next(self, h: Health, answer: Answer, trial: bool) -> Health | None:
        now = self.now()
        verdict = answer.verdict
        if h.status == "disabled":
            return None  # only an operator brings it back
        if verdict == "ok" or (trial and verdict == "refused"):
            if h.status == "healthy" and h.auth_failures == 0:
                return None
            return replace(HEALTHY, at=now, last_error=h.last_error)
        if verdict == "rate_limited":
            secs = answer.retry_after_s
            wait = timedelta(seconds=secs) if secs else self.policy.rate_cooldown
            return Health("cooling", now + wait, 0, answer.reason, now)
        if verdict == "key_rejected" and (trial or not h.key_rejected):
            failures = h.auth_failures + 1
            if failures >= self.policy.disable_after:
                return Health("disabled", None, failures, answer.reason, now)
            until = now + self.policy.backoff(failures)
            return Health("cooling", until, failures, answer.reason, now)
        return None  # a request-level refusal, a 5xx, or a rejection already counted


def _passed(until: datetime | None, now: datetime) -> bool:
    return until is None or until <= now


def describe_unavailable(
    provider: str, keys: tuple[RealKeyInfo, ...], pool: Pool, now: datetime
) -> str:
    """The 503's message: how many keys, why each is out, when the next try is. Labels and
    provider messages stay out of it (tenants see it); reasons are short codes."""
    if not keys:
        return f"No {provider} API key is configured in tollkeeper."
    parts = "; ".join(_why_out(pool.health(k), now) for k in keys)
    head = "its only key is out" if len(keys) == 1 else f"all {len(keys)} keys are out"
    return f"No usable {provider} API key in tollkeeper: {head}: {parts}."


def _why_out(h: Health, now: datetime) -> str:
    why = f" ({h.last_error})" if h.last_error else ""
    if h.status == "disabled":
        return f"disabled after {h.auth_failures} rejections{why} until an operator enables it"
    wait = _seconds(h.cooldown_until, now)
    if h.key_rejected:
        if wait == 0:
            return f"rejected by the provider{why}, a trial request is in flight"
        return f"rejected by the provider{why}, next try in {wait} s"
    return f"rate-limited by the provider{why}, usable again in {wait} s"


def _seconds(until: datetime | None, now: datetime) -> int:
    if until is None or until <= now:
        return 0
    return math.ceil((until - now).total_seconds())
