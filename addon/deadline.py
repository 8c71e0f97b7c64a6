"""Blocking calls with a deadline, for a database that may hang instead of refusing.

Driver timeouts cover a refusing or slow server, not a frozen one: a PostgreSQL server
that was stopped (or a network path that swallows packets) leaves the client waiting on a
socket its kernel still acknowledges. ``DeadlineRunner`` runs each call on a daemon
thread of its own and gives the caller ``DeadlineExceeded`` when the call has not returned
in time. The call itself cannot be interrupted: it goes on in the background, and until
it returns every new call fails at once (so calls never pile up behind a hung one, and
a late commit never races a retry). The thread is a daemon, so a hung call never keeps
the process from exiting.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class DeadlineExceeded(Exception):
    """The call did not return in time (or an earlier one is still running)."""


class _Call[T]:
    def __init__(self, fn: Callable[[], T]) -> None:
        self.fn = fn
        self.result: T | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()


class DeadlineRunner:
    def __init__(self, name: str) -> None:
        self._name = name
        self._inbox: queue.SimpleQueue[_Call[object] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._busy = False
        self._thread: threading.Thread | None = None

    @property
    def hung(self) -> bool:
        """True while a call that overran its deadline is still running."""
        return self._busy

    def call(self, fn: Callable[[], T], timeout_s: float) -> T:
        with self._lock:
            if self._busy:
                raise DeadlineExceeded(f"an earlier {self._name} call has not returned yet")
            self._busy = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        job: _Call[T] = _Call(fn)
        self._inbox.put(job)  # type: ignore[arg-type]
        if not job.done.wait(timeout_s):
            raise DeadlineExceeded(f"{self._name} call took longer than {timeout_s:g} s")
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[return-value]

    def close(self) -> None:
        """Let the thread end after the call it runs (never waits for it)."""
        self._inbox.put(None)

    def _run(self) -> None:
        while (job := self._inbox.get()) is not None:
            try:
                job.result = job.fn()
            except BaseException as e:  # noqa: BLE001 - handed to the caller as is
                job.error = e
            finally:
                with self._lock:
                    self._busy = False
                job.done.set()
