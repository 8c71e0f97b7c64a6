"""Real-key pools: pick a usable key for a provider, and track key health.

Health rules: a 429 from the provider cools the key down for the time it asked
(``retry-after``, default 30 s); a 401/403 cools it down for 5 minutes and, after
``DISABLE_AFTER`` consecutive auth failures, disables it until an operator re-adds it.
Any success resets the auth-failure count. Local observations apply at once; they are
also persisted (by the caller) so other processes and ``providers list`` see them.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from addon.keycache import RealKeyInfo

DISABLE_AFTER = 3
AUTH_COOLDOWN = timedelta(minutes=5)
DEFAULT_RATE_COOLDOWN = timedelta(seconds=30)


@dataclass(frozen=True)
class Health:
    status: str  # healthy | cooling | disabled
    cooldown_until: datetime | None
    auth_failures: int
    last_error: str | None = None


class Pool:
    def __init__(self) -> None:
        self._local: dict[int, Health] = {}
        self._counters: dict[str, itertools.count[int]] = {}  # one rotation per provider
        self._lock = threading.Lock()

    def health(self, key: RealKeyInfo) -> Health:
        local = self._local.get(key.id)
        stored = Health(key.status, key.cooldown_until, key.auth_failures)
        if local is None:
            return stored
        until = max(
            (t for t in (local.cooldown_until, stored.cooldown_until) if t is not None),
            default=None,
        )
        status = "disabled" if "disabled" in (local.status, stored.status) else local.status
        return Health(status, until, max(local.auth_failures, stored.auth_failures))

    def pick(self, keys: tuple[RealKeyInfo, ...], now: datetime) -> RealKeyInfo | None:
        """Round-robin over usable keys; None when every key is cooling or disabled."""
        usable = [k for k in keys if self._usable(self.health(k), now)]
        if not usable:
            return None
        counter = self._counters.setdefault(usable[0].provider, itertools.count())
        return usable[next(counter) % len(usable)]

    def soonest_retry(self, keys: tuple[RealKeyInfo, ...], now: datetime) -> int | None:
        times = [h.cooldown_until for h in map(self.health, keys) if h.status != "disabled"]
        waits = [(t - now).total_seconds() for t in times if t is not None and t > now]
        return max(1, int(min(waits)) + 1) if waits else None

    @staticmethod
    def _usable(h: Health, now: datetime) -> bool:
        if h.status == "disabled":
            return False
        return h.cooldown_until is None or h.cooldown_until <= now

    def report(self, key: RealKeyInfo, status_code: int, retry_after_s: float | None) -> Health:
        """Update a key's health from an upstream status; returns the new health."""
        now = datetime.now(UTC)
        with self._lock:
            current = self.health(key)
            if status_code in (401, 403):
                failures = current.auth_failures + 1
                state = "disabled" if failures >= DISABLE_AFTER else "cooling"
                new = Health(state, now + AUTH_COOLDOWN, failures, f"upstream {status_code}")
            elif status_code == 429:
                wait = timedelta(seconds=retry_after_s) if retry_after_s else DEFAULT_RATE_COOLDOWN
                new = Health("cooling", now + wait, current.auth_failures, "upstream 429")
            elif 200 <= status_code < 400:
                if current.status == "healthy" and current.auth_failures == 0:
                    return current
                new = Health("healthy", None, 0, None)
            else:
                return current
            self._local[key.id] = new
            return new
