"""Blocking calls with a deadline: a hung call costs its caller the deadline, not forever."""

from __future__ import annotations

import threading

import pytest

from addon.deadline import DeadlineExceeded, DeadlineRunner


def test_a_call_returns_its_result_and_raises_its_error() -> None:
    runner = DeadlineRunner("t")
    assert runner.call(lambda: 42, 5) == 42
    with pytest.raises(ZeroDivisionError):
        runner.call(lambda: 1 // 0, 5)
    runner.close()


def test_a_hung_call_gives_up_and_later_calls_fail_at_once_until_it_returns() -> None:
    runner = DeadlineRunner("t")
    release, ran = threading.Event(), threading.Event()

    def hang() -> str:
        release.wait()
        ran.set()
        return "late"

    with pytest.raises(DeadlineExceeded):
        runner.call(hang, 0.05)
    assert runner.hung
    with pytest.raises(DeadlineExceeded, match="has not returned"):
        runner.call(lambda: "queued behind", 5)  # refused without waiting its deadline
    release.set()
    assert ran.wait(5)
    assert runner.call(lambda: "fresh", 5) == "fresh"
    assert not runner.hung
    runner.close()


def test_the_runner_thread_never_keeps_the_process_alive() -> None:
    runner = DeadlineRunner("t")
    release = threading.Event()
    with pytest.raises(DeadlineExceeded):
        runner.call(release.wait, 0.01)
    threads = [t for t in threading.enumerate() if t.name == "t"]
    assert threads and all(t.daemon for t in threads)
    release.set()
    runner.close()
