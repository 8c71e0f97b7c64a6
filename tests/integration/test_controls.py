"""Budgets, rate limits and allow-lists, enforced exactly at the gateway — also when two
gateway processes share one PostgreSQL database."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from integration.conftest import Stack, build_stack
from integration.harness import GatewayProcess, wait_for

MESSAGES = [{"role": "user", "content": "hi"}]
CHAT_COST = Decimal("0.0001272")  # the fake's gpt-4o-mini usage (providers.md §4.4)


def _chat(client, **extra):
    return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, **extra)


def _outcome(client, **extra) -> str:
    try:
        _chat(client, **extra)
        return "ok"
    except openai.RateLimitError as e:
        return e.response.headers.get("x-tollkeeper-error", "provider-429")


def _in_one_minute[T](attempt: Callable[[], T]) -> T:
    """What ``attempt()`` returned in a run that began and ended in one UTC minute.

    RPM/TPM windows are UTC minutes (of the gateway's clock, which is this machine's): a
    burst that straddles two sees two windows. Such a run is repeated rather than avoided
    by sleeping; ``attempt`` makes a key of its own, so a repeat starts from empty windows."""
    for _ in range(3):
        started = time.time()
        result = attempt()
        if started // 60 == time.time() // 60:
            return result
    raise AssertionError("three runs in a row straddled a minute boundary")


def _spent(stack: Stack, project: str) -> Decimal:
    rows = [r for r in stack.cli.usage("project") if r["project"] == project]
    return Decimal(rows[0]["cost_usd"]) if rows else Decimal(0)


def test_budget_holds_under_a_parallel_burst(stack: Stack, monkeypatch):
    budget = Decimal("0.001")
    key = stack.cli.new_key("budget", "--budget", str(budget))
    client = stack.openai_forward(key["key"], monkeypatch)
    client = client.with_options(max_retries=2)  # the SDK must not retry a budget refusal
    assert _outcome(client) == "ok"  # history: reservations use the key's average cost
    wait_for(lambda: _spent(stack, "budget") > 0, timeout=3)
    stack.upstream.set_scenario("ok", delay=0.2)  # streams are slow enough to overlap
    # max_tokens=40 (the fake's answer): each request's own estimate (prompt + 40 tokens)
    # is below the average, which then sets the reservation. Without it a request would
    # reserve tollkeeper_reserve_output_tokens (4096 tokens, $0.0025: over the whole
    # budget), and only one request could be in flight at a time.
    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(lambda _: _outcome(client, max_tokens=40), range(16)))
    assert "budget_exceeded" in outcomes and outcomes.count("ok") >= 5
    # every request is recorded, refused ones too (at no cost)
    total = wait_for(lambda: _settled(stack, "budget", 1 + len(outcomes)), timeout=5)
    assert total <= budget + CHAT_COST, total  # overshoot at most one request's cost
    served = [r for r in stack.upstream.requests if r.path == "/v1/chat/completions"]
    assert len(served) == 1 + outcomes.count("ok")  # refusals were not retried upstream
    show = stack.cli.json("keys", "show", key["id"], "--json")
    assert Decimal(show["spent_usd"]) == total


def _settled(stack: Stack, project: str, requests: int) -> Decimal | None:
    rows = [r for r in stack.cli.usage("project") if r["project"] == project]
    if rows and rows[0]["requests"] == requests:
        return Decimal(rows[0]["cost_usd"])
    return None


def test_budget_refusal_is_shaped_for_the_sdk(stack: Stack, monkeypatch):
    key = stack.cli.new_key("budget-zero", "--budget", "0")
    with pytest.raises(openai.RateLimitError) as exc:
        _chat(stack.openai_forward(key["key"], monkeypatch))
    h = exc.value.response.headers
    assert h["x-tollkeeper-error"] == "budget_exceeded" and h["x-should-retry"] == "false"
    assert exc.value.body["code"] == "insufficient_quota"
    assert stack.upstream.requests == []


def test_rpm_limit_and_retry_after(stack: Stack, monkeypatch):
    def burst() -> tuple[list[str], openai.RateLimitError | None]:
        key = stack.cli.new_key("rpm", "--rpm", "3")
        client = stack.openai_forward(key["key"], monkeypatch)
        outcomes = [_outcome(client) for _ in range(5)]
        try:
            _chat(client)
        except openai.RateLimitError as e:
            return outcomes, e
        return outcomes, None

    outcomes, refusal = _in_one_minute(burst)
    assert outcomes == ["ok"] * 3 + ["rate_limited"] * 2
    assert refusal is not None
    assert 0 < int(refusal.response.headers["retry-after"]) <= 60


def test_tpm_counts_metered_tokens(stack: Stack, monkeypatch):
    def calls() -> list[str]:
        project = f"tpm-{time.monotonic_ns()}"  # each run its own key and project
        key = stack.cli.new_key(project, "--tpm", "2000")  # the fake reports 1240 tokens a call
        client = stack.openai_forward(key["key"], monkeypatch)
        outcomes = [_outcome(client)]
        wait_for(lambda: _spent(stack, project) > 0, timeout=3)  # settled: 1240 tokens counted
        outcomes.append(_outcome(client))  # 1240 + the small estimate of this request < 2000
        wait_for(lambda: _settled(stack, project, 2), timeout=3)
        outcomes.append(_outcome(client))  # 2480 > 2000
        return outcomes

    assert _in_one_minute(calls) == ["ok", "ok", "rate_limited"]


def test_max_parallel(stack: Stack, monkeypatch):
    key = stack.cli.new_key("parallel", "--max-parallel", "2")
    client = stack.openai_forward(key["key"], monkeypatch)
    stack.upstream.set_scenario("slow", seconds=1.5)
    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(lambda _: _outcome(client), range(6)))
    assert sorted(outcomes) == ["ok", "ok"] + ["rate_limited"] * 4


def test_provider_and_model_allow_lists(stack: Stack, monkeypatch):
    key = stack.cli.new_key("allow", "--providers", "openai", "--models", "gpt-4o*")["key"]
    oa = stack.openai_forward(key, monkeypatch)
    assert _chat(oa).usage.total_tokens > 0
    with pytest.raises(openai.PermissionDeniedError) as exc:
        oa.responses.create(model="gpt-5-mini", input="hi")
    assert exc.value.response.headers["x-tollkeeper-error"] == "not_allowed"
    with pytest.raises(anthropic.PermissionDeniedError):
        stack.anthropic_forward(key, monkeypatch).messages.create(
            model="claude-haiku-4-5", max_tokens=8, messages=MESSAGES
        )
    assert [r.path for r in stack.upstream.requests] == ["/v1/chat/completions"]


def test_keys_update_applies_to_the_running_gateway_within_a_second(stack: Stack, monkeypatch):
    def update() -> tuple[dict[str, Any], openai.OpenAI, str, bool]:
        key = stack.cli.new_key("update")
        client = stack.openai_forward(key["key"], monkeypatch)
        first = _outcome(client)
        stack.cli.run("keys", "update", key["id"], "--rpm", "1")
        limited = wait_for(lambda: _outcome(client) == "rate_limited", timeout=1.0, interval=0.05)
        return key, client, first, limited

    key, client, first, limited = _in_one_minute(update)
    assert first == "ok" and limited
    stack.cli.run("keys", "update", key["id"], "--models", "claude-*")
    assert wait_for(lambda: _forbidden(client), timeout=1.0, interval=0.05)


def _forbidden(client) -> bool:
    try:
        _chat(client)
    except openai.PermissionDeniedError:
        return True
    except openai.RateLimitError:
        return False
    return False


@pytest.mark.postgres
def test_two_gateway_processes_share_rpm_and_budget(postgres_url, tmp_path: Path, monkeypatch):
    gen = build_stack(tmp_path, db_url=postgres_url)
    s = next(gen)
    second_dir = tmp_path / "second"
    second_dir.mkdir()
    second = GatewayProcess(second_dir, s.workdir / "home", db_url=postgres_url).start()
    try:

        def burst() -> list[str]:
            rpm_key = s.cli.new_key("shared-rpm", "--rpm", "6")["key"]
            clients = [s.openai_reverse(rpm_key, monkeypatch)]
            clients.append(clients[0].with_options(base_url=second.reverse_url("openai") + "/v1"))
            with ThreadPoolExecutor(8) as pool:
                return list(pool.map(lambda i: _outcome(clients[i % 2]), range(16)))

        outcomes = _in_one_minute(burst)
        assert outcomes.count("ok") == 6, outcomes  # in total, not 6 per process

        budget_key = s.cli.new_key("shared-budget", "--budget", "0.0006")["key"]
        bclients = [s.openai_reverse(budget_key, monkeypatch)]
        bclients.append(bclients[0].with_options(base_url=second.reverse_url("openai") + "/v1"))
        assert _outcome(bclients[0]) == "ok"
        wait_for(lambda: _spent(s, "shared-budget") > 0, timeout=3)
        s.upstream.set_scenario("ok", delay=0.2)
        with ThreadPoolExecutor(8) as pool:
            outcomes = list(pool.map(lambda i: _outcome(bclients[i % 2]), range(12)))
        total = wait_for(lambda: _settled(s, "shared-budget", 1 + len(outcomes)), timeout=5)
        assert total is not None and total <= Decimal("0.0006") + CHAT_COST
        assert "budget_exceeded" in outcomes
    finally:
        second.stop()
        s.gateway.stop()
        next(gen, None)
