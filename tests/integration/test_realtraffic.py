"""Real provider traffic (``../shared/realtraffic``) replayed behind a real mitmdump.

Every recorded response is served by a replay upstream to a raw HTTP client that sends the
case's request (its virtual key swapped in) through the gateway: once framed one event per
HTTP chunk through a reverse listener for the case's host, once cut at arbitrary offsets
through the forward proxy, and streams once more close-delimited. The client must receive the
recorded bytes (minus a usage chunk the gateway injected), the upstream must see the request
once, on the path the client sent, and the usage record must be what the case expects.
One gateway serves the whole module; the HTTP clients keep their connections alive.
"""

from __future__ import annotations

import dataclasses
import json
import random
import sqlite3
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from fakes.recorded import (
    SKIP_REASON,
    Case,
    check_record,
    event_cuts,
    expected_client_bytes,
    load_cases,
    random_cuts,
)
from fakes.replay import ReplayUpstream, reply_for
from integration.harness import Cli, GatewayProcess, _accepts, free_port, wait_for

from addon.providers.base import Provider
from addon.providers.registry import BUILTIN

CASES = load_cases()
pytestmark = [pytest.mark.integration, pytest.mark.skipif(not CASES, reason=SKIP_REASON)]


def provider_of(case: Case) -> Provider:
    provider = BUILTIN.by_host(case.host)
    assert provider is not None, case.host
    return provider


def streamed(case: Case) -> bool:
    return case.is_sse or provider_of(case).api_for(case.method, case.path) == "gemini.stream"


@dataclass
class Replay:
    upstream: ReplayUpstream
    gateway: GatewayProcess
    db: Path
    key: str
    reverse_ports: dict[str, int]  # host -> reverse listener
    reverse: httpx.Client
    forward: httpx.Client

    def last_record_id(self) -> int:
        with _connect(self.db) as con:
            return int(con.execute("select coalesce(max(id), 0) from usage_records").fetchone()[0])

    def records_after(self, record_id: int) -> list[dict[str, Any]]:
        def fetch() -> list[dict[str, Any]]:
            with _connect(self.db) as con:
                rows = con.execute("select * from usage_records where id > ?", (record_id,))
                return [dict(r) for r in rows]

        return list(wait_for(fetch, timeout=10, interval=0.02) or [])


def _connect(db: Path) -> sqlite3.Connection:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    return con


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replay]:
    tmp = tmp_path_factory.mktemp("realtraffic")
    home = tmp / "home"
    home.mkdir()
    with ReplayUpstream() as up:
        cli = Cli(home)
        for name in sorted({provider_of(c).name for c in CASES}):
            base = up.base_url + BUILTIN.providers[name].base_path
            for n in range(keys_needed(name)):
                secret = f"sk-{name}-REAL-recorded-{n:030d}"
                cli.add_provider(name, secret, base, label=f"k{n}")
        hosts = sorted({c.host for c in CASES})
        ports = {host: free_port() for host in hosts}
        modes = [
            a for h, p in ports.items() for a in ("--mode", f"reverse:https://{h}@127.0.0.1:{p}")
        ]
        gateway = GatewayProcess(tmp, home, reverse=(), extra_args=modes)
        with gateway:
            assert wait_for(lambda: all(_accepts(p) for p in ports.values()), timeout=20)
            key = cli.new_key("realtraffic")["key"]
            reverse = httpx.Client(trust_env=False, timeout=20)
            forward = httpx.Client(
                trust_env=False,
                timeout=20,
                proxy=gateway.proxy_url,
                verify=ssl.create_default_context(cafile=gateway.ca_cert),
            )
            with reverse, forward:
                yield Replay(up, gateway, home / "tollkeeper.db", key, ports, reverse, forward)


def keys_needed(provider: str) -> int:
    """A recorded 429 or 401/403 rightly takes its real key out of the pool for a while, so
    a provider gets one key for each such answer it will give (three framings), plus one."""
    benching = [c for c in CASES if provider_of(c).name == provider and c.status in BENCHING]
    return 1 + len(FRAMINGS) * len(benching)


BENCHING = (401, 403, 429)
FRAMINGS = ("events", "cuts", "close")


def request_headers(case: Case, key: str) -> dict[str, str]:
    auth = provider_of(case).auth
    headers = {k: v for k, v in case.request_headers.items() if k not in ("content-length", "host")}
    headers[auth.header] = f"Bearer {key}" if auth.bearer else key
    return headers


def exchange(
    replay: Replay,
    case: Case,
    *,
    via: str,
    cuts: list[int] | None,
    close: bool = False,
    path: str | None = None,
) -> bool:
    """Send ``case`` through the gateway; check bytes, upstream request and record. True
    when the gateway injected ``include_usage`` (and so stripped its chunk)."""
    path = path or case.path
    replay.upstream.reset()
    replay.upstream.arm(reply_for(case, cuts, close_delimited=close))
    before = replay.last_record_id()
    if via == "reverse":
        client, url = replay.reverse, f"http://127.0.0.1:{replay.reverse_ports[case.host]}{path}"
    else:
        client, url = replay.forward, f"https://{case.host}{path}"
    headers = request_headers(case, replay.key)
    with client.stream(case.method, url, content=case.request_body, headers=headers) as resp:
        received = b"".join(resp.iter_raw())
        status = resp.status_code
    seen = replay.upstream.requests
    assert len(seen) == 1, f"{case.id}: the upstream saw {len(seen)} requests"
    assert status == case.status, (case.id, received[:300])
    assert seen[0].path == path, case.id  # forwarded as the client sent it
    injected = _injected_usage(case, seen[0].body)
    assert received == expected_client_bytes(case, stripped=injected), case.id
    rows = replay.records_after(before)
    assert len(rows) == 1, (case.id, rows)
    check_record(case, rows[0])
    assert rows[0]["streamed"] == streamed(case), case.id
    return injected


def _injected_usage(case: Case, upstream_body: bytes) -> bool:
    """The gateway added ``stream_options.include_usage`` the client had not asked for."""
    try:
        sent = json.loads(upstream_body)
    except ValueError:
        return False
    asked = (json.loads(case.request_body).get("stream_options") or {}).get("include_usage")
    got = (
        (sent.get("stream_options") or {}).get("include_usage") if isinstance(sent, dict) else None
    )
    return got is True and asked is not True


def cuts_for(case: Case) -> list[int]:
    return random_cuts(len(case.response_body), random.Random(case.id), pieces=16)


def ids(cases: list[Case]) -> list[str]:
    return [c.id for c in cases]


STREAMED = [c for c in CASES if streamed(c)]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_one_event_per_chunk_through_a_reverse_listener(replay: Replay, case: Case) -> None:
    exchange(replay, case, via="reverse", cuts=event_cuts(case) if streamed(case) else None)


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_cut_at_arbitrary_offsets_through_the_forward_proxy(replay: Replay, case: Case) -> None:
    exchange(replay, case, via="forward", cuts=cuts_for(case))


@pytest.mark.parametrize("case", STREAMED, ids=ids(STREAMED))
def test_close_delimited_stream_through_the_forward_proxy(replay: Replay, case: Case) -> None:
    exchange(replay, case, via="forward", cuts=cuts_for(case), close=True)


def test_a_path_with_repeated_slashes_is_metered_and_forwarded_unchanged(replay: Replay) -> None:
    case = next(c for c in CASES if c.path.startswith("/openai/deployments/"))
    exchange(replay, case, via="forward", cuts=None, path="/" + case.path)
    exchange(replay, case, via="reverse", cuts=None, path="/" + case.path)


def as_openai_without_usage_opt_in(case: Case) -> Case:
    """``case``'s recorded OpenAI-shaped stream, asked of OpenAI by a client that did not
    ask for usage: the gateway injects ``include_usage`` and must strip the usage chunk."""
    body = json.loads(case.request_body)
    body.pop("stream_options", None)
    body["model"] = "gpt-4o-mini"
    return dataclasses.replace(
        case,
        host="api.openai.com",
        path="/v1/chat/completions",
        request_body=json.dumps(body).encode(),
        client_asked_usage=False,
    )


def test_an_injected_usage_chunk_is_stripped_from_recorded_bytes(replay: Replay) -> None:
    """No recording of an opt-in provider carries a usage chunk its client did not ask for
    (it was never injected), so one that has it is replayed as OpenAI's."""
    recorded = next(c for c in CASES if c.id == "openrouter-chat-stream-plain-01")
    case = as_openai_without_usage_opt_in(recorded)
    assert expected_client_bytes(case, stripped=True) != case.response_body
    assert exchange(replay, case, via="reverse", cuts=event_cuts(case))
    assert exchange(replay, case, via="forward", cuts=cuts_for(case))
    assert exchange(replay, case, via="forward", cuts=cuts_for(case), close=True)
