"""``providers enable``, ``providers test`` and the health ``providers list`` shows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fakes.upstream import FakeUpstream
from sqlmodel import Session

from addon.store import realkeys_repo

SECRET = "sk-proj-Zq8sXecretValue0123456789wxyz"
ANT_SECRET = "sk-ant-api03-AnotherSecret9876"
GEMINI_SECRET = "AIzaSyFakeGeminiKey0000000000000000abcd"


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


@pytest.fixture
def env_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_TEST_KEY", SECRET)
    return "OPENAI_TEST_KEY"


def _set_health(store, label: str, **health: object) -> datetime:
    with Session(store) as s:
        row = next(r for r in realkeys_repo.list_real_keys(session=s) if r.label == label)
        assert row.id is not None
        realkeys_repo.record_health(session=s, key_id=row.id, **health)  # type: ignore[arg-type]
        s.refresh(row)
        return row.updated_at


def _stored(store, label: str):
    with Session(store) as s:
        return next(r for r in realkeys_repo.list_real_keys(session=s) if r.label == label)


# --- enable ----------------------------------------------------------------------------------


def test_enable_brings_a_disabled_key_back_now_and_is_audited(ok, store, env_key):
    ok("providers", "add", "openai", "--api-key-env", env_key, "--label", "main")
    written = _set_health(
        store,
        "main",
        status="disabled",
        cooldown_until=None,
        auth_failures=8,
        last_error="401 invalid_api_key",
    )
    result = ok("providers", "enable", "openai", "--label", "main")
    assert "Enabled openai key 'main' (was disabled)" in result.stderr
    row = _stored(store, "main")
    assert (row.status, row.cooldown_until, row.consecutive_auth_failures) == ("healthy", None, 0)
    assert row.updated_at > written  # what running gateways compare with their own view
    (event,) = [e for e in json.loads(ok("audit", "--json").stdout) if "enabled" in e["action"]]
    assert (event["action"], event["target"], event["actor"]) == (
        "real_key.enabled",
        "openai/main",
        "tester",
    )
    assert SECRET not in json.dumps(event)


def test_enable_an_unknown_key_is_a_one_line_error(ok, tk, one_line_error, env_key):
    ok("providers", "add", "openai", "--api-key-env", env_key)
    one_line_error(tk("providers", "enable", "openai", "--label", "nope"), "nope")
    one_line_error(tk("providers", "enable", "nosuch", "--label", "default"), "nosuch")


# --- list ------------------------------------------------------------------------------------


def test_list_shows_why_a_key_is_out_and_its_last_error(ok, store, env_key):
    ok("providers", "add", "openai", "--api-key-env", env_key, "--label", "a")
    ok("providers", "add", "openai", "--api-key-env", env_key, "--label", "b")
    until = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    _set_health(
        store,
        "a",
        status="cooling",
        cooldown_until=until,
        auth_failures=2,
        last_error="401 invalid_api_key",
    )
    _set_health(
        store,
        "b",
        status="cooling",
        cooldown_until=until,
        auth_failures=0,
        last_error="429 rate_limit_exceeded",
    )
    data = {d["label"]: d for d in json.loads(ok("providers", "list", "--json").stdout)}
    assert data["a"]["health"] == {
        "status": "key_rejected",
        "next_try_at": "2030-01-02T03:04:05Z",
        "failures": 2,
        "last_error": "401 invalid_api_key",
        "updated_at": data["a"]["health"]["updated_at"],
    }
    assert (data["b"]["health"]["status"], data["b"]["last_error"]) == (
        "rate_limited",
        "429 rate_limit_exceeded",
    )
    lines = ok("providers", "list").stdout.splitlines()
    assert "LAST ERROR" in lines[0] and "NEXT TRY" in lines[0]
    assert "cooling (key rejected)" in lines[1] and "2030-01-02 03:04:05" in lines[1]
    assert "401 invalid_api_key" in lines[1]
    assert "cooling (rate limited)" in lines[2] and "429 rate_limit_exceeded" in lines[2]


# --- test ------------------------------------------------------------------------------------


def test_test_makes_one_authenticated_call_and_reports_in_one_line(ok, env_key, upstream):
    base = upstream.base_url + "/v1"
    ok("providers", "add", "openai", "--api-key-env", env_key, "--base-url", base)
    result = ok("providers", "test", "openai")
    (line,) = result.stdout.splitlines()
    assert line.startswith("openai/default (…wxyz): ok — 200 — GET ")
    assert f"{base}/models" in line and SECRET not in result.output
    (request,) = upstream.requests
    assert (request.method, request.path) == ("GET", "/v1/models")
    assert request.headers["authorization"] == f"Bearer {SECRET}"


def test_test_reports_a_key_the_provider_rejects_and_exits_1(tk, ok, env_key, upstream):
    ok(
        "providers",
        "add",
        "openai",
        "--api-key-env",
        env_key,
        "--base-url",
        upstream.base_url + "/v1",
    )
    upstream.key_status[SECRET] = 401
    result = tk("providers", "test", "openai", "--json")
    assert result.exit_code == 1
    (item,) = json.loads(result.stdout)
    assert (item["status"], item["verdict"], item["reason"], item["key_works"]) == (
        401,
        "key_rejected",
        "401 invalid_api_key",
        False,
    )
    assert item["label"] == "default" and item["key_hint"] == "…wxyz"
    assert SECRET not in result.output and SECRET[-8:] not in result.output  # the body echoes it
    line = tk("providers", "test", "openai").stdout
    assert "KEY REJECTED — 401 invalid_api_key" in line


def test_test_a_refused_call_still_shows_the_key_works(ok, env_key, upstream):
    ok(
        "providers",
        "add",
        "openai",
        "--api-key-env",
        env_key,
        "--base-url",
        upstream.base_url + "/v1",
    )
    upstream.key_status[SECRET] = 403
    line = ok("providers", "test", "openai").stdout
    assert "key accepted, call refused — 403" in line


@pytest.mark.parametrize(
    ("provider", "secret", "base", "path", "header", "sent"),
    [
        ("anthropic", ANT_SECRET, "", "/v1/models", "x-api-key", ANT_SECRET),
        ("gemini", GEMINI_SECRET, "", "/v1beta/models", "x-goog-api-key", GEMINI_SECRET),
        ("mistral", SECRET, "/v1", "/v1/models", "authorization", f"Bearer {SECRET}"),
    ],
)
def test_test_uses_each_providers_own_auth_and_listing(
    ok, monkeypatch, upstream, provider, secret, base, path, header, sent
):
    monkeypatch.setenv("THE_KEY", secret)
    ok(
        "providers",
        "add",
        provider,
        "--api-key-env",
        "THE_KEY",
        "--base-url",
        upstream.base_url + base,
    )
    assert " ok — 200 — " in ok("providers", "test", provider).stdout
    (request,) = upstream.requests
    assert request.path == path and request.headers[header] == sent
    if provider == "anthropic":
        assert request.headers["anthropic-version"] == "2023-06-01"
    if provider == "gemini":
        assert "key=" not in request.path  # in a header, never in a URL that gets printed


def test_test_every_key_of_the_pool_or_one_label(tk, ok, env_key, upstream, monkeypatch):
    base = upstream.base_url + "/v1"
    ok("providers", "add", "openai", "--api-key-env", env_key, "--base-url", base, "--label", "a")
    monkeypatch.setenv("OTHER_KEY", "sk-proj-OtherKey00000000000000000000dead")
    ok(
        "providers",
        "add",
        "openai",
        "--api-key-env",
        "OTHER_KEY",
        "--base-url",
        base,
        "--label",
        "b",
    )
    upstream.key_status["sk-proj-OtherKey00000000000000000000dead"] = 401
    both = tk("providers", "test", "openai")
    assert both.exit_code == 1
    lines = both.stdout.splitlines()
    assert [line.split(" ")[0] for line in lines] == ["openai/a", "openai/b"]
    assert " ok " in lines[0] and "KEY REJECTED" in lines[1]
    assert " ok " in ok("providers", "test", "openai", "--label", "a").stdout


def test_test_an_unreachable_upstream_says_so(tk, ok, env_key):
    ok(
        "providers",
        "add",
        "openai",
        "--api-key-env",
        env_key,
        "--base-url",
        "http://127.0.0.1:9/v1",
    )
    result = tk("providers", "test", "openai", "--timeout", "2")
    assert result.exit_code == 1
    assert "UNREACHABLE — no answer" in result.stdout


def test_test_without_keys_or_endpoint_is_a_one_line_error(tk, ok, one_line_error, env_key):
    one_line_error(tk("providers", "test", "openai"), "no openai keys")
    # an Azure key without --base-url cannot be added any more (each key is bound to its
    # resource), so there is no key for `providers test` to try
    one_line_error(tk("providers", "add", "azure", "--api-key-env", env_key), "--base-url")
    one_line_error(tk("providers", "test", "azure"), "no azure keys")
    base = "https://res.openai.azure.com"
    ok("providers", "add", "azure", "--api-key-env", env_key, "--base-url", base)
    one_line_error(tk("providers", "test", "azure", "--label", "x"), "'x'")
