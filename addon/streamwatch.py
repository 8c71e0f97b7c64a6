"""Cuts a streamed response off when it runs too long or goes quiet.

A ``StreamWatch`` is told of every chunk (``touch``) and checks itself with one timer
on the event loop: past ``max_s`` since the stream began, or ``idle_s`` since the last
chunk, it calls ``expire`` once (the hooks close the upstream connection, so the client
gets the end of what was sent and the record says why). 0 turns a limit off.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class StreamWatch:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        max_s: float,
        idle_s: float,
        expire: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._loop, self._expire, self._clock = loop, expire, clock
        self._max_s, self._idle_s = max_s, idle_s
        self._started = self._last = clock()
        self._handle: asyncio.TimerHandle | None = None
        self.expired = False
        self._schedule()

    def touch(self) -> None:
        self._last = self._clock()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _due(self) -> float | None:
        times = []
        if self._max_s:
            times.append(self._started + self._max_s)
        if self._idle_s:
            times.append(self._last + self._idle_s)
        return min(times) if times else None

    def _schedule(self) -> None:
        due = self._due()
        if due is not None:
            self._handle = self._loop.call_later(max(0.0, due - self._clock()), self._check)

    def _check(self) -> None:
        self._handle = None
        due = self._due()
        if due is None or self.expired:
            return
        if self._clock() >= due:
            self.expired = True
            self._expire()
        else:
            self._schedule()
