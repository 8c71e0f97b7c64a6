"""Budget alerts end to end: a real mitmdump, the official openai SDK, and a webhook
receiver on loopback. Spend crossing 50% and 100% of a key's budget POSTs exactly one
message per threshold, also when the receiver fails at first."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import openai
import pytest
from integration.conftest import Stack, build_stack
from integration.harness import GatewayProcess, free_port, wait_for

from addon.pricing.cost import usd_text

PICOUSD_PER_USD = 10**12


class Receiver:
    """A webhook receiver: answers 500 to its first ``failures`` POSTs, then 200."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.posts: list[tuple[int, dict[str, Any]]] = []  # (status answered, body)
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver.cond:
                    status = 500 if len(receiver.posts) < receiver.failures else 200
                    receiver.posts.append((status, body))
                    receiver.cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T0/SECRETPATH"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def delivered(self) -> list[dict[str, Any]]:
        with self.cond:
            return self._delivered()

    def wait_delivered(self, n: int, timeout: float = 20) -> list[dict[str, Any]]:
        """The bodies answered 200, once there are ``n`` of them (or the timeout passed)."""
        with self.cond:
            self.cond.wait_for(lambda: len(self._delivered()) >= n, timeout)
            return self._delivered()

    def _delivered(self) -> list[dict[str, Any]]:
        return [body for status, body in self.posts if status == 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def stack_with(tmp: Path, receiver: Receiver) -> Iterator[Stack]:
    yield from build_stack(
        tmp,
        extra_args=(
            "--set",
            f"tollkeeper_alert_webhook={receiver.url}",
            "--set",
            "tollkeeper_alert_retry_ms=50",
        ),
    )


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    r = Receiver(failures=getattr(request, "param", 0))
    yield r
    r.close()


@pytest.fixture
def alert_stack(tmp_path: Path, receiver: Receiver) -> Iterator[Stack]:
    yield from stack_with(tmp_path, receiver)


def chat(client: openai.OpenAI) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])


def cost_of_one_request(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> int:
    """What one chat request costs on the fake upstream (a key without a budget)."""
    chat(stack.openai_reverse(stack.cli.new_key("probe")["key"], monkeypatch))
    rows = wait_for(lambda: [r for r in stack.cli.usage() if r["project"] == "probe"])
    cost = int(Decimal(rows[0]["cost_usd"]) * PICOUSD_PER_USD)
    assert cost > 0
    return cost


def spend_across_50_and_100(
    stack: Stack, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, Any], int]:
    """A key whose budget is two requests: the first crosses 50%, the second 100%, the
    third is refused (and crosses nothing new)."""
    cost = cost_of_one_request(stack, monkeypatch)
    key = stack.cli.new_key(
        "alerted",
        "--budget",
        usd_text(2 * cost),
        "--budget-period",
        "daily",
        "--alert-at",
        "50,100",
    )
    client = stack.openai_reverse(key["key"], monkeypatch)
    chat(client)
    assert [b["threshold_percent"] for b in receiver.wait_delivered(1)] == [50]
    chat(client)
    assert [b["threshold_percent"] for b in receiver.wait_delivered(2)] == [50, 100]
    with pytest.raises(openai.RateLimitError):
        chat(client)
    return key, cost


def check_messages(bodies: list[dict[str, Any]], key: dict[str, Any], cost: int) -> None:
    first, second = bodies
    assert first["key_id"] == second["key_id"] == key["id"]
    assert first["project"] == "alerted" and first["period"] == "daily"
    assert (first["spent_usd"], second["spent_usd"]) == (usd_text(cost), usd_text(2 * cost))
    assert first["budget_usd"] == usd_text(2 * cost)
    assert first["period_start"].endswith("T00:00:00Z") and first["gateway_instance"]
    assert "crossing the 50% alert" in first["text"] and "(100%)" in second["text"]
    assert key["key"] not in json.dumps(bodies)


def test_spend_crossing_50_and_100_posts_two_messages(alert_stack, receiver, monkeypatch):
    key, cost = spend_across_50_and_100(alert_stack, receiver, monkeypatch)
    shown = alert_stack.cli.json("keys", "show", key["id"], "--json")
    assert [(a["threshold_percent"], a["delivery"]) for a in shown["alerts_fired"]] == [
        (50, "sent"),
        (100, "sent"),
    ]
    check_messages(receiver.delivered(), key, cost)
    rows = wait_for(
        lambda: [
            r for r in alert_stack.cli.usage() if r["project"] == "alerted" and r["requests"] == 3
        ]
    )
    assert rows, alert_stack.cli.usage()  # the refused one is recorded too
    audit = alert_stack.cli.json("audit", "--json")
    alerts = [e for e in audit if e["action"] == "key.budget_alert"]
    assert sorted(e["details"]["threshold_percent"] for e in alerts) == [50, 100]
    alert_stack.gateway.stop()  # whatever was still to be sent has gone by now
    assert len(receiver.posts) == 2
    assert "SECRETPATH" not in alert_stack.gateway.log()


@pytest.mark.parametrize("receiver", [2], indirect=True)
def test_a_receiver_failing_twice_still_gets_one_message_per_threshold(
    alert_stack, receiver, monkeypatch
):
    key, _ = spend_across_50_and_100(alert_stack, receiver, monkeypatch)
    alert_stack.gateway.stop()
    assert [s for s, _ in receiver.posts] == [500, 500, 200, 200]
    assert [b["threshold_percent"] for b in receiver.delivered()] == [50, 100]
    shown = alert_stack.cli.json("keys", "show", key["id"], "--json")
    assert [(a["delivery"], a["attempts"]) for a in shown["alerts_fired"]] == [
        ("sent", 3),
        ("sent", 1),
    ]


@pytest.mark.postgres
def test_two_gateways_on_one_postgres_send_each_alert_once(
    postgres_url: str, tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
):
    alert_args = ("--set", f"tollkeeper_alert_webhook={receiver.url}")
    gen = build_stack(tmp_path, db_url=postgres_url, extra_args=alert_args)
    s = next(gen)
    second_dir = tmp_path / "second"
    second_dir.mkdir()
    second = GatewayProcess(
        second_dir, s.workdir / "home", db_url=postgres_url, extra_args=alert_args
    ).start()
    try:
        cost = cost_of_one_request(s, monkeypatch)
        key = s.cli.new_key("shared", "--budget", usd_text(4 * cost), "--alert-at", "25,50,75,100")
        first = s.openai_reverse(key["key"], monkeypatch)
        clients = [first, first.with_options(base_url=second.reverse_url("openai") + "/v1")]
        for i in range(4):  # alternating gateways; each request crosses one more threshold
            chat(clients[i % 2])
            assert len(receiver.wait_delivered(i + 1)) == i + 1
        for client in clients:  # both gateways now commit records of a key past 100%
            with pytest.raises(openai.RateLimitError):
                chat(client)
        wait_for(
            lambda: [r for r in s.cli.usage() if r["project"] == "shared" and r["requests"] == 6]
        )
    finally:
        second.stop()
        s.gateway.stop()
        next(gen, None)
    bodies = receiver.delivered()
    assert sorted(b["threshold_percent"] for b in bodies) == [25, 50, 75, 100]
    assert len(receiver.posts) == 4
    assert len({b["gateway_instance"] for b in bodies}) == 2  # each gateway sent its own
