"""A stream is cut off past its duration cap or after going quiet for the idle cap."""

from __future__ import annotations

import asyncio

from addon.streamwatch import StreamWatch


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_quiet_stream_expires_after_the_idle_cap_and_chunks_postpone_it():
    clock, expired = Clock(), []
    watch = StreamWatch(
        asyncio.get_running_loop(),
        max_s=0,
        idle_s=10,
        expire=lambda: expired.append(1),
        clock=clock,
    )
    clock.now += 9
    watch.touch()
    clock.now += 9
    watch._check()  # 9 s since the last chunk: not yet
    assert not expired and watch._handle is not None
    clock.now += 1
    watch._check()
    assert expired == [1] and watch.expired
    watch._check()
    assert expired == [1]  # once
    watch.cancel()


async def test_a_busy_stream_still_ends_at_the_duration_cap():
    clock, expired = Clock(), []
    watch = StreamWatch(
        asyncio.get_running_loop(),
        max_s=30,
        idle_s=10,
        expire=lambda: expired.append(1),
        clock=clock,
    )
    for _ in range(6):
        clock.now += 5
        watch.touch()
        watch._check()
    assert expired == [1]
    watch.cancel()


async def test_the_timer_fires_on_the_loop():
    fired = asyncio.Event()
    watch = StreamWatch(asyncio.get_running_loop(), max_s=0, idle_s=0.01, expire=fired.set)
    await asyncio.wait_for(fired.wait(), timeout=10)
    assert watch.expired


async def test_no_limits_means_no_timer():
    watch = StreamWatch(asyncio.get_running_loop(), max_s=0, idle_s=0, expire=lambda: None)
    assert watch._handle is None
