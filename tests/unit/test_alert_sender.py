"""The webhook sender: retries with backoff on its own thread, bounded, reports outcomes."""

from __future__ import annotations

import json
import threading
import urllib.error

import pytest

from addon.alert_sender import Job, WebhookSender, check_url

URL = "http://127.0.0.1:9/hook/SECRETPART"


class Receiver:
    """Fails the first ``failures`` posts, then accepts."""

    def __init__(self, failures: int = 0, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or urllib.error.URLError(ConnectionRefusedError())
        self.posts: list[dict[str, object]] = []
        self.lock = threading.Lock()
        self.posted = threading.Event()

    def __call__(self, url: str, body: bytes, timeout_s: float) -> None:
        with self.lock:
            self.posts.append(json.loads(body))
            self.posted.set()
            if len(self.posts) <= self.failures:
                raise self.error


class Outcomes:
    def __init__(self, expected: int) -> None:
        self.results: list[tuple[Job, bool]] = []
        self.expected = expected
        self.done = threading.Event()

    def __call__(self, job: Job, ok: bool) -> None:
        self.results.append((job, ok))
        if len(self.results) >= self.expected:
            self.done.set()


def sender(receiver: Receiver, outcomes: Outcomes, **kw: object) -> WebhookSender:
    s = WebhookSender(URL, outcomes, first_backoff_s=0.001, post=receiver, **kw)  # type: ignore[arg-type]
    s.start()
    return s


def test_a_receiver_that_fails_twice_gets_the_message_on_the_third_try():
    receiver, outcomes = Receiver(failures=2), Outcomes(1)
    s = sender(receiver, outcomes)
    assert s.submit(Job(body={"text": "hi"}, ref="a"))
    assert outcomes.done.wait(10)
    s.stop()
    ((job, ok),) = outcomes.results
    assert ok and job.attempts == 3 and job.error is None
    assert receiver.posts == [{"text": "hi"}] * 3


def test_giving_up_after_max_attempts_reports_the_failure_without_the_url():
    err = urllib.error.HTTPError(URL, 500, "boom", {}, None)  # type: ignore[arg-type]
    receiver, outcomes = Receiver(failures=100, error=err), Outcomes(1)
    s = sender(receiver, outcomes, max_attempts=4)
    s.submit(Job(body={"text": "x"}, ref="a"))
    assert outcomes.done.wait(10)
    s.stop()
    ((job, ok),) = outcomes.results
    assert not ok and job.attempts == 4 and job.error == "HTTP 500"
    assert len(receiver.posts) == 4
    err.close()


def test_a_full_queue_refuses_at_once():
    blocked = threading.Event()
    gate = threading.Event()

    def slow(url: str, body: bytes, timeout_s: float) -> None:
        blocked.set()
        gate.wait(10)

    outcomes = Outcomes(3)
    s = WebhookSender(URL, outcomes, post=slow, capacity=2)
    s.start()
    assert s.submit(Job(body={}, ref=0))
    assert blocked.wait(10)  # the first is being sent; two more fill the queue
    assert s.submit(Job(body={}, ref=1)) and s.submit(Job(body={}, ref=2))
    assert not s.submit(Job(body={}, ref=3))
    gate.set()
    assert outcomes.done.wait(10)
    s.stop()
    assert sorted(j.ref for j, ok in outcomes.results if ok) == [0, 1, 2]  # type: ignore[type-var]


def test_what_is_left_at_stop_is_reported_failed():
    receiver, outcomes = Receiver(failures=100), Outcomes(1)
    s = WebhookSender(URL, outcomes, first_backoff_s=3600, post=receiver)
    s.start()
    s.submit(Job(body={}, ref="a"))
    # wait until the first attempt failed and the job waits an hour for its retry
    assert receiver.posted.wait(10)
    s.stop()
    ((job, ok),) = outcomes.results
    assert not ok and job.error


@pytest.mark.parametrize("url", ["ftp://x/y", "hooks.slack.com/x", "http:///nohost", ""])
def test_webhook_urls_must_be_http_with_a_host(url: str):
    with pytest.raises(ValueError, match="http"):
        check_url(url)
