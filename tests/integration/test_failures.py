"""When things go wrong upstream, in the traffic, or inside the addon: a clear answer to
the client, a usage record, and real-key health that steers the next request."""

from __future__ import annotations

import json
import sqlite3

import anthropic
import httpx2 as httpx
import openai
import pytest
from cryptography.fernet import Fernet
from integration.conftest import OPENAI_REAL, Stack
from integration.harness import free_port, wait_for

MESSAGES = [{"role": "user", "content": "hi"}]
SECOND_REAL = "sk-proj-SECONDopenaiKEY000000000000000000000000002"


def _records(stack: Stack, project: str) -> list[dict]:
    return [r for r in stack.cli.usage("project") if r["project"] == project]


def _chat(client):
    return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def test_dead_real_key_401_passes_through_and_pool_moves_to_the_healthy_key(
    fresh_stack: Stack, monkeypatch
):
    s = fresh_stack
    s.cli.add_provider("openai", SECOND_REAL, s.upstream.base_url + "/v1", label="backup")
    s.upstream.key_status[OPENAI_REAL] = 401
    key = s.cli.new_key("pool")["key"]
    client = s.openai_forward(key, monkeypatch)
    assert len(s.cli.json("providers", "list", "--json")) == 3
    assert wait_for(lambda: s.gateway.real_key_state("openai", "backup") == "healthy")
    outcomes = []
    for _ in range(4):
        try:
            _chat(client)
            outcomes.append("ok")
        except openai.AuthenticationError as e:
            assert "x-tollkeeper-error" not in e.response.headers  # the provider's own 401
            assert OPENAI_REAL not in e.response.text
            outcomes.append("401")
    # at most one request meets the dead key; after that only the healthy key is used
    assert outcomes.count("401") <= 1 and outcomes[-2:] == ["ok", "ok"]
    used = [r.headers["authorization"] for r in s.upstream.requests[-2:]]
    assert used == [f"Bearer {SECOND_REAL}"] * 2
    if "401" in outcomes:
        listed = {p["label"]: p for p in s.cli.json("providers", "list", "--json")}
        assert wait_for(lambda: _health(s, "main") != "healthy", timeout=3), listed
    rows = wait_for(lambda: [r for r in _records(s, "pool") if r["requests"] == 4], timeout=3)
    assert rows and rows[0]["error_requests"] == outcomes.count("401")


def _health(s: Stack, label: str) -> str:
    for p in s.cli.json("providers", "list", "--json"):
        if p["provider"] == "openai" and p["label"] == label:
            return str(p.get("health", {}).get("status", p.get("status")))
    return ""


def test_provider_429_passes_through_with_headers_and_cools_the_key(stack: Stack, monkeypatch):
    key = stack.cli.new_key("rate-limited")["key"]
    client = stack.openai_forward(key, monkeypatch)
    stack.upstream.set_scenario("status", code=429, retry_after=2, times=1)
    with pytest.raises(openai.RateLimitError) as exc:
        _chat(client)
    headers = exc.value.response.headers
    assert headers["retry-after"] == "2" and "x-ratelimit-remaining-requests" in headers
    assert "x-tollkeeper-error" not in headers
    # the only openai key is cooling down for 2 s: the gateway answers 503 itself
    with pytest.raises(openai.InternalServerError) as exc2:
        _chat(client)
    assert exc2.value.status_code == 503
    assert exc2.value.response.headers["x-tollkeeper-error"] == "no_real_key"
    assert int(exc2.value.response.headers["retry-after"]) <= 3
    # the gateway itself says when the cooldown is over: the next request is the key's trial
    assert wait_for(
        lambda: stack.gateway.real_key_state("openai", "main") in ("half_open", "healthy")
    )
    assert _chat(client).usage.total_tokens > 0
    rows = wait_for(lambda: [r for r in _records(stack, "rate-limited") if r["requests"] == 3])
    assert rows and rows[0]["error_requests"] == 2


def test_unreachable_upstream_gets_a_provider_shaped_502_and_is_recorded(
    fresh_stack: Stack, monkeypatch
):
    s = fresh_stack
    s.cli.run("providers", "remove", "anthropic", "--label", "main")
    dead = f"http://127.0.0.1:{free_port()}"
    s.cli.add_provider("anthropic", "sk-ant-x-12345678", dead, label="dead")
    # until its key snapshot has the change, the gateway still forwards to the working key
    assert wait_for(
        lambda: (
            s.gateway.real_key_state("anthropic", "main") is None
            and s.gateway.real_key_state("anthropic", "dead") == "healthy"
        )
    )
    key = s.cli.new_key("unreachable")["key"]
    client = s.anthropic_forward(key, monkeypatch)
    assert wait_for(lambda: _try_anthropic(client) == 502, timeout=3)
    rows = wait_for(lambda: _records(s, "unreachable"))
    assert rows[0]["error_requests"] == rows[0]["requests"] >= 1


def _try_anthropic(client) -> int | None:
    try:
        client.messages.create(model="claude-haiku-4-5", max_tokens=8, messages=MESSAGES)
    except anthropic.APIStatusError as e:
        if e.status_code == 502:
            assert e.body["type"] == "error"
            assert e.response.headers["x-tollkeeper-error"] == "upstream_unreachable"
        return e.status_code
    return 200


def test_slow_upstream_is_cut_off_at_the_gateway_timeout_and_recorded(tmp_path, monkeypatch):
    from integration.conftest import build_stack

    gen = build_stack(tmp_path, extra_args=("--set", "tollkeeper_upstream_timeout=1"))
    s = next(gen)
    try:
        key = s.cli.new_key("slow")["key"]
        s.upstream.set_scenario("slow", seconds=4)
        client = s.openai_forward(key, monkeypatch)
        import time

        start = time.monotonic()
        with pytest.raises((openai.APIConnectionError, openai.InternalServerError)):
            _chat(client)
        assert time.monotonic() - start < 3  # released at the 1 s gateway timeout
        rows = wait_for(lambda: _records(s, "slow"), timeout=5)
        assert rows[0]["error_requests"] == 1
        recs = _raw_records(s)
        assert recs[-1]["error_kind"] == "upstream_timeout" and recs[-1]["status_code"] == 504
    finally:
        s.gateway.stop()
        next(gen, None)


def _raw_records(s: Stack) -> list[dict]:
    import sqlite3

    con = sqlite3.connect(s.workdir / "home" / "tollkeeper.db")
    con.row_factory = sqlite3.Row
    rows = [dict(r) for r in con.execute("select * from usage_records order by id")]
    con.close()
    return rows


@pytest.mark.parametrize(
    ("scenario", "params"),
    [("nonjson", {}), ("truncated", {}), ("large", {"size": 3_000_000}), ("cut", {"events": 2})],
)
def test_bad_upstream_traffic_never_crashes_and_is_recorded(
    stack: Stack, monkeypatch, scenario, params
):
    project = f"bad-{scenario}"
    key = stack.cli.new_key(project)["key"]
    client = stack.openai_forward(key, monkeypatch)
    stack.upstream.set_scenario(scenario, **params)
    stream = scenario == "cut"
    try:
        if stream:
            list(
                client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
            )
        else:
            _chat(client)
    except (openai.APIError, json.JSONDecodeError, httpx.HTTPError):
        pass
    rows = wait_for(lambda: _records(stack, project), timeout=5)
    assert rows and rows[0]["requests"] == 1
    stack.upstream.reset()
    assert _chat(client).usage.total_tokens > 0  # the gateway is still fine


def test_malformed_json_and_odd_content_types_are_forwarded_and_recorded(stack: Stack):
    key = stack.cli.new_key("odd-bodies")["key"]
    url = stack.gateway.reverse_url("openai") + "/v1/chat/completions"
    with httpx.Client(trust_env=False, timeout=10) as c:
        r1 = c.post(
            url,
            content=b'{"model": "gpt-4o-mini", "messages": [',
            headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
        )
        r2 = c.post(
            url,
            content=b"hello",
            headers={"authorization": f"Bearer {key}", "content-type": "text/plain"},
        )
    assert r1.status_code == r2.status_code == 400  # the provider's own answer, passed through
    rows = wait_for(lambda: [r for r in _records(stack, "odd-bodies") if r["requests"] == 2])
    assert rows and rows[0]["error_requests"] == 2


def _refused(client: openai.OpenAI) -> bool:
    try:
        _chat(client)
    except openai.AuthenticationError:
        return True
    except openai.InternalServerError:  # not revoked yet here, and its real key is broken
        return False
    return False


def _admitted(client) -> bool:
    try:
        _chat(client)
    except openai.AuthenticationError:
        return False
    except openai.InternalServerError:  # admitted; its real key may be broken already
        return True
    return True


def test_a_fault_inside_the_addon_answers_500_and_is_recorded(fresh_stack: Stack, monkeypatch):
    s = fresh_stack
    key = s.cli.new_key("fault")["key"]
    # the running gateway's real key stops decrypting (a gateway does not start with one)
    other = Fernet(Fernet.generate_key()).encrypt(b"sk-other").decode()
    with sqlite3.connect(s.gateway.home / "tollkeeper.db") as db:
        db.execute(
            "UPDATE real_keys SET ciphertext = ?, updated_at = CURRENT_TIMESTAMP"
            " WHERE provider = 'openai'",
            (other,),
        )
    # a change made after it: once the gateway refuses this key, it has read the first too.
    # The probe is admitted first: a key the gateway never held is looked up directly, and
    # a revoked one refused at once, before any refresh.
    probe = s.cli.new_key("probe")
    prober = s.openai_forward(probe["key"], monkeypatch)
    assert _admitted(prober)
    s.cli.run("keys", "revoke", probe["id"])
    assert wait_for(lambda: _refused(prober), timeout=5, interval=0.05)
    s.upstream.clear()  # probes sent before the revocation arrived
    with pytest.raises(openai.InternalServerError) as exc:
        _chat(s.openai_forward(key, monkeypatch))
    assert exc.value.status_code == 500
    assert exc.value.response.headers["x-tollkeeper-error"] == "gateway_error"
    assert s.upstream.requests == []
    rows = wait_for(lambda: _records(s, "fault"), timeout=5)
    assert rows[0]["error_requests"] == 1
