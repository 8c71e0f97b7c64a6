"""The admin listener of a real mitmdump: health, readiness and Prometheus metrics."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2 as httpx
import openai
import pytest
from fakes import payloads
from integration.conftest import OPENAI_REAL, Stack, build_stack
from integration.harness import START_TIMEOUT_S, free_port, wait_for


def get(stack: Stack, path: str, **kw: object) -> httpx.Response:
    return stack.gateway.admin_get(path, **kw)


def metric(stack: Stack, name: str, **labels: str) -> float | None:
    return stack.gateway.metric(name, **labels)


def test_health_readiness_and_metrics_after_traffic(stack: Stack, monkeypatch) -> None:
    assert get(stack, "/healthz").json() == {"alive": True}
    ready = get(stack, "/readyz")
    assert ready.status_code == 200, ready.text
    checks = ready.json()["checks"]
    assert checks["database"] == checks["spool"] == checks["keys"] == checks["recording"] == "ok"
    assert checks["real_keys:openai"] == "ok"

    key = stack.cli.new_key("admin-metrics")["key"]
    client = stack.openai_reverse(key, monkeypatch)
    for _ in range(2):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(openai.AuthenticationError):
        stack.openai_reverse("tk-nothere000-" + "0" * 40, monkeypatch).models.list()

    labels = {"provider": "openai", "model": "gpt-4o-mini", "project": "admin-metrics"}
    count = wait_for(lambda: metric(stack, "tollkeeper_requests_total", **labels, status="200"))
    assert count == 2
    usage = payloads.OPENAI_CHAT_USAGE
    assert (
        metric(stack, "tollkeeper_tokens_total", **labels, type="input")
        == 2 * usage["prompt_tokens"]
    )
    assert (
        metric(stack, "tollkeeper_tokens_total", **labels, type="output")
        == 2 * usage["completion_tokens"]
    )
    assert (metric(stack, "tollkeeper_cost_usd_total", **labels) or 0) > 0
    assert wait_for(lambda: metric(stack, "tollkeeper_rejections_total", code="invalid_key"))
    assert metric(stack, "tollkeeper_real_key_healthy", provider="openai", label="main") == 1
    assert (metric(stack, "tollkeeper_records_written_total") or 0) >= 3
    overhead = metric(stack, "tollkeeper_gateway_overhead_seconds_count", provider="openai")
    assert (overhead or 0) >= 2  # each forwarded answer, observed before the client got it
    body = get(stack, "/metrics").content
    assert OPENAI_REAL.encode() not in body and key.encode() not in body


def test_readiness_names_a_provider_whose_keys_are_all_cooling(fresh_stack: Stack, monkeypatch):
    fresh_stack.upstream.key_status[OPENAI_REAL] = 429
    client = fresh_stack.openai_reverse(fresh_stack.cli.new_key("cool")["key"], monkeypatch)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o-mini", messages=[])
    ready = wait_for(lambda: (r := get(fresh_stack, "/readyz")).status_code == 503 and r)
    assert ready, get(fresh_stack, "/readyz").text
    assert ready.json()["checks"]["real_keys:openai"].startswith("no usable key (1 configured")
    assert ready.json()["checks"]["real_keys:anthropic"] == "ok"


def test_beyond_loopback_every_page_needs_the_token(tmp_path: Path) -> None:
    port = free_port()
    wild = f"0.0.0.0:{port}"
    extra = ("--set", f"tollkeeper_admin={wild}")
    for stack in build_stack(tmp_path, extra_args=extra):
        url = f"http://127.0.0.1:{port}"

        def healthz(url: str = url) -> int | None:
            try:
                return httpx.get(url + "/healthz", trust_env=False).status_code
            except httpx.ConnectError:
                return None

        assert wait_for(healthz, timeout=START_TIMEOUT_S) == 401  # its admin is not awaited
        token = (tmp_path / "home" / "admin.token").read_text().strip()
        bad = {"authorization": "Bearer nope"}
        assert httpx.get(url + "/metrics", headers=bad, trust_env=False).status_code == 401
        good = {"authorization": f"Bearer {token}"}
        answer = httpx.get(url + "/readyz", headers=good, trust_env=False)
        assert answer.status_code == 200 and json.loads(answer.text)["ready"] is True
        assert stack.gateway.proc is not None
