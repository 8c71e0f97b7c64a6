"""A bounded set of recent misses: virtual key ids looked up and not found.

A flood of well-formed but unknown ``tk-…`` keys would otherwise cost one database query
each. Entries expire after ``ttl_s`` and the oldest go first when ``max_entries`` is
reached; a key created meanwhile is seen by the snapshot refresh, which is read first.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable


class MissCache:
    def __init__(
        self,
        *,
        max_entries: int = 10_000,
        ttl_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max, self._ttl, self._clock = max_entries, ttl_s, clock
        self._at: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, key_id: object) -> bool:
        with self._lock:
            at = self._at.get(key_id) if isinstance(key_id, str) else None
            if at is None:
                return False
            if self._clock() - at < self._ttl:
                return True
            del self._at[key_id]  # type: ignore[arg-type]
            return False

    def __len__(self) -> int:
        return len(self._at)

    def add(self, key_id: str) -> None:
        with self._lock:
            self._at[key_id] = self._clock()
            self._at.move_to_end(key_id)
            while len(self._at) > self._max:
                self._at.popitem(last=False)

    def forget(self, key_ids: Iterable[str]) -> None:
        with self._lock:
            for key_id in key_ids:
                self._at.pop(key_id, None)
