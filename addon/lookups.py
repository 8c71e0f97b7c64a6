"""Looking up a virtual key that is not in the snapshot, without letting a flood of made-up
keys take the gateway's threads or its database.

The snapshot answers almost every request. A well-formed key id it does not hold is either
a key created since the last refresh or a key nobody issued: it is looked up once in the
database on a small executor of the gateway's own, and misses are remembered for a second
(``KeyCache.misses``). At most ``per_second`` such queries run each second and at most
``max_pending`` wait at once; beyond that (a flood of made-up keys, each id new) a request
does not query: it waits for the next snapshot refresh, which brings any key created
meanwhile, and is answered from the snapshot. So a flood costs the database a bounded
number of queries, slows only itself, and a new key still works within a second. A query
that fails or takes longer than ``timeout_s`` answers a 503 with ``retry-after``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.exc import SQLAlchemyError

from addon.errors import GatewayError
from addon.keycache import KeyCache, KeyInfo
from addon.store.db import describe_error

log = logging.getLogger(__name__)


class LookupUnavailable(GatewayError):
    """A key not in the snapshot cannot be looked up: the database does not answer."""

    status, code = 503, "key_lookup_unavailable"
    category = "overloaded"


class Budget:
    """A token bucket: ``take`` succeeds at most ``per_second`` times a second on average."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate, self._clock = per_second, clock
        self._tokens, self._at = per_second, clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self._rate, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class KeyLookups:
    def __init__(
        self,
        cache: KeyCache,
        *,
        workers: int = 2,
        max_pending: int = 16,
        per_second: float = 50.0,
        timeout_s: float = 5.0,
    ) -> None:
        self._cache = cache
        self._timeout_s = timeout_s
        self._max_pending = max_pending
        self._budget = Budget(per_second)
        self._pending = 0
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tollkeeper-key")

    async def find(self, key_id: str) -> KeyInfo | None:
        """The key's info, or None when there is no such key (event loop only)."""
        cache = self._cache
        info = cache.keys.get(key_id)
        if info is not None or key_id in cache.misses:
            return info
        if self._pending >= self._max_pending or not self._budget.take():
            await asyncio.sleep(2 * cache.interval_s)  # a refresh has run meanwhile
            info = cache.keys.get(key_id)
            if info is None:
                cache.misses.add(key_id)
            return info
        self._pending += 1
        try:
            query = asyncio.wrap_future(self._pool.submit(cache.load_one, key_id))
            return await asyncio.wait_for(query, self._timeout_s)
        except (SQLAlchemyError, TimeoutError) as e:
            reason = describe_error(e) if isinstance(e, SQLAlchemyError) else "no answer"
            log.warning("tollkeeper: cannot look up virtual key %s (%s)", key_id, reason)
            raise LookupUnavailable(
                "The gateway cannot check this virtual key right now; retry shortly.",
                retry_after_s=2,
            ) from None
        finally:
            self._pending -= 1

    def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
