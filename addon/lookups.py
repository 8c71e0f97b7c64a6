"""Looking up a virtual key that is not in the snapshot, without letting a flood of made-up
keys take the gateway's threads or its database.

The snapshot answers almost every request. A well-formed key id it does not hold is either
a key created since the last refresh or a key nobody issued: it is looked up once in the
database on a small executor of the gateway's own, and misses are remembered for a second
(``KeyCache.misses``). When ``max_pending`` lookups are already waiting (a flood), a request
does not queue another query: it waits for the next snapshot refresh, which brings any key
created meanwhile, and is answered from the snapshot.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from addon.keycache import KeyCache, KeyInfo


class KeyLookups:
    def __init__(self, cache: KeyCache, *, workers: int = 2, max_pending: int = 16) -> None:
        self._cache = cache
        self._max_pending = max_pending
        self._pending = 0
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tollkeeper-key")

    async def find(self, key_id: str) -> KeyInfo | None:
        """The key's info, or None when there is no such key (event loop only)."""
        cache = self._cache
        info = cache.keys.get(key_id)
        if info is not None or key_id in cache.misses:
            return info
        if self._pending >= self._max_pending:
            await asyncio.sleep(2 * cache.interval_s)  # a refresh has run meanwhile
            info = cache.keys.get(key_id)
            if info is None:
                cache.misses.add(key_id)
            return info
        self._pending += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, cache.load_one, key_id)
        finally:
            self._pending -= 1

    def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
