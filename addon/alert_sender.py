"""Sends budget-alert webhooks from its own thread, with retries and backoff.

``submit`` never waits: it puts the message into a bounded queue (full: the alert is
reported failed at once). The thread POSTs each message as JSON; a refusal (not 2xx), a
timeout or a connection error is retried after ``first_backoff_s``, doubling up to
``max_backoff_s``, at most ``max_attempts`` times. Messages wait in a heap ordered by when
they are due, so one failing receiver does not hold up messages already due. The outcome
of each message goes to ``on_done`` (from this thread). The URL may itself hold a secret
(Slack's do): it is never logged, only its host.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

CAPACITY = 1000
TIMEOUT_S = 10.0


@dataclass
class Job:
    body: dict[str, object]
    ref: object  # what on_done is told about (the alert)
    attempts: int = 0
    error: str | None = None


Post = Callable[[str, bytes, float], None]  # raises on failure
Done = Callable[[Job, bool], None]


def check_url(url: str) -> str:
    """A webhook URL must be http(s) with a host; raises ValueError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("the alert webhook must be an http:// or https:// URL")
    return url


def http_post(url: str, body: bytes, timeout_s: float) -> None:
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked by check_url
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
        response.read(4096)  # a 2xx; urlopen raises HTTPError for the rest


def _why(e: Exception) -> str:
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code}"
    if isinstance(e, urllib.error.URLError):
        return f"unreachable ({type(e.reason).__name__})"
    return type(e).__name__


class WebhookSender:
    def __init__(
        self,
        url: str,
        on_done: Done,
        *,
        first_backoff_s: float = 1.0,
        max_backoff_s: float = 300.0,
        max_attempts: int = 8,
        capacity: int = CAPACITY,
        post: Post = http_post,
    ) -> None:
        self._url = check_url(url)
        self.host = urlsplit(url).hostname or "?"
        self._on_done = on_done
        self._first, self._max_backoff = first_backoff_s, max_backoff_s
        self._max_attempts, self._capacity = max_attempts, capacity
        self._post = post
        self._due: list[tuple[float, int, Job]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopping = False
        self._drain_until = 0.0
        self._thread = threading.Thread(target=self._run, name="tollkeeper-alerts", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, job: Job) -> bool:
        """Queue a message (never waits); False when the queue is full."""
        with self._cond:
            if len(self._due) >= self._capacity or self._stopping:
                return False
            heapq.heappush(self._due, (time.monotonic(), next(self._seq), job))
            self._cond.notify()
        return True

    def stop(self, timeout_s: float = 2.0) -> None:
        """Send what is due within ``timeout_s``, then stop; what is left (retries not due
        yet included) is reported failed."""
        with self._cond:
            self._stopping = True
            self._drain_until = time.monotonic() + timeout_s
            self._cond.notify()
        self._thread.join(timeout=timeout_s)
        with self._cond:
            left, self._due = [job for _, _, job in self._due], []
        for job in left:
            job.error = job.error or "gateway stopped before it was sent"
            self._done(job, False)

    def _next(self) -> Job | None:
        """The next message due; while stopping, only those already due (None: stop)."""
        with self._cond:
            while True:
                now = time.monotonic()
                wait = self._due[0][0] - now if self._due else None
                due = wait is not None and wait <= 0
                if self._stopping:
                    return heapq.heappop(self._due)[2] if due and now < self._drain_until else None
                if due:
                    return heapq.heappop(self._due)[2]
                self._cond.wait(wait)

    def _run(self) -> None:
        while (job := self._next()) is not None:
            self._attempt(job)

    def _attempt(self, job: Job) -> None:
        job.attempts += 1
        try:
            self._post(self._url, json.dumps(job.body).encode(), TIMEOUT_S)
        except Exception as e:  # noqa: BLE001 - every failure is retried, then reported
            job.error = _why(e)
        else:
            job.error = None
            self._done(job, True)
            return
        if job.attempts >= self._max_attempts:
            log.warning(
                "tollkeeper: budget alert webhook to %s failed %d times (%s); giving up",
                self.host,
                job.attempts,
                job.error,
            )
            self._done(job, False)
            return
        delay = min(self._max_backoff, self._first * 2 ** (job.attempts - 1))
        with self._cond:
            heapq.heappush(self._due, (time.monotonic() + delay, next(self._seq), job))

    def _done(self, job: Job, ok: bool) -> None:
        try:
            self._on_done(job, ok)
        except Exception:  # the sender thread must not die
            log.exception("tollkeeper: could not record a budget alert's delivery")
