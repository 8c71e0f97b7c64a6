"""The bounded cache of recent misses (unknown virtual key ids)."""

from __future__ import annotations

from addon.negcache import MissCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_miss_is_remembered_until_it_expires() -> None:
    clock = Clock()
    misses = MissCache(ttl_s=1.0, clock=clock)
    misses.add("abc")
    clock.now += 0.9
    assert "abc" in misses and "other" not in misses
    clock.now += 0.2
    assert "abc" not in misses
    assert len(misses) == 0  # an expired entry is dropped when seen


def test_the_oldest_misses_go_first_when_full() -> None:
    misses = MissCache(max_entries=3, clock=Clock())
    for key_id in ("a", "b", "c", "d"):
        misses.add(key_id)
    assert len(misses) == 3
    assert "a" not in misses and all(k in misses for k in ("b", "c", "d"))


def test_forget_drops_entries() -> None:
    misses = MissCache(clock=Clock())
    misses.add("a")
    misses.add("b")
    misses.forget(["a", "zzz"])
    assert "a" not in misses and "b" in misses
