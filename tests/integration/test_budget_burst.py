"""A burst of parallel requests on a fresh key (no spend yet, so no average cost to lean on)
spends at most its budget plus one request's cost: each request reserves its own estimate,
its prompt plus its output limit (``max_tokens``, or ``tollkeeper_reserve_output_tokens``).

The fake reports, for each request, exactly the prompt the gateway estimates and as much
output as the request allows: the most a request can cost within its reservation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import openai
import pytest
from integration.conftest import Stack, build_stack
from integration.harness import wait_for

from addon.admission import reservation
from addon.pricing.table import PriceBook

MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "hi"}]
DEFAULT_OUTPUT = 300  # the gateway's tollkeeper_reserve_output_tokens in these tests
BURST = 32


@pytest.fixture(scope="module")
def burst_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    option = f"tollkeeper_reserve_output_tokens={DEFAULT_OUTPUT}"
    yield from build_stack(tmp_path_factory.mktemp("burst"), extra_args=("--set", option))


def _max_cost(body: dict[str, object], output: int) -> tuple[Decimal, int]:
    """(the most one request can cost, its prompt tokens) as the gateway estimates them."""
    raw = json.dumps(body).encode()
    picousd, tokens = reservation(PriceBook.bundled(), "openai", "openai.chat", MODEL, raw, output)
    prompt = tokens - (output if "max_tokens" in body else 0)
    return Decimal(picousd) / 10**12, prompt


def _outcome(client: openai.OpenAI, extra: dict[str, object]) -> str:
    try:
        client.chat.completions.create(model=MODEL, messages=MESSAGES, **extra)  # type: ignore[call-overload]
        return "ok"
    except openai.RateLimitError as e:
        return e.response.headers.get("x-tollkeeper-error", "provider-429")


def _settled(stack: Stack, project: str, requests: int) -> Decimal | None:
    rows = [r for r in stack.cli.usage("project") if r["project"] == project]
    if rows and rows[0]["requests"] == requests:
        return Decimal(rows[0]["cost_usd"])
    return None


@pytest.mark.parametrize(
    ("project", "extra", "output"),
    [("burst-max-tokens", {"max_tokens": 200}, 200), ("burst-default", {}, DEFAULT_OUTPUT)],
)
def test_a_burst_on_a_fresh_key_overshoots_by_at_most_one_request(
    burst_stack: Stack, monkeypatch: pytest.MonkeyPatch, project: str, extra: dict, output: int
) -> None:
    stack = burst_stack
    stack.upstream.reset()
    one, prompt = _max_cost({"model": MODEL, "messages": MESSAGES, **extra}, output)
    budget = (one * Decimal("7.5")).quantize(Decimal("0.000001"))  # room for 7 and a half
    key = stack.cli.new_key(project, "--budget", str(budget))
    stack.upstream.usage["chat"] = {"prompt_tokens": prompt, "completion_tokens": output}
    stack.upstream.set_scenario("slow", seconds=0.3)  # all 32 overlap
    client = stack.openai_forward(key["key"], monkeypatch)
    with ThreadPoolExecutor(BURST) as pool:
        outcomes = list(pool.map(lambda _: _outcome(client, extra), range(BURST)))
    total = wait_for(lambda: _settled(stack, project, BURST), timeout=10)
    assert total is not None
    served = [r for r in stack.upstream.requests if r.path == "/v1/chat/completions"]
    ok = outcomes.count("ok")
    assert set(outcomes) == {"ok", "budget_exceeded"} and len(served) == ok, outcomes
    assert total == ok * one  # each answer cost exactly what its request reserved
    over = total - budget
    print(f"\n{project}: budget {budget} spent {total} ({ok} of {BURST} ok), overshoot {over}")
    assert total <= budget + one
    assert ok >= 1
