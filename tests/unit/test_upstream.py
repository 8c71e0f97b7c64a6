"""Where a request goes upstream, and the TCP reachability probe (loopback only)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from addon import upstream
from addon.providers.registry import PROVIDERS
from addon.upstream import Target, UpstreamProbe, parse_base_url, upstream_path

HOST = "127.0.0.1"


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("https://api.openai.com/v1", Target("https", "api.openai.com", 443, "/v1")),
        ("https://api.openai.com/v1/", Target("https", "api.openai.com", 443, "/v1")),
        ("https://api.anthropic.com", Target("https", "api.anthropic.com", 443, "")),
        ("http://127.0.0.1:9/v1", Target("http", "127.0.0.1", 9, "/v1")),
        ("http://localhost", Target("http", "localhost", 80, "")),
        (
            "http://vllm.internal:8000/openai/v1",
            Target("http", "vllm.internal", 8000, "/openai/v1"),
        ),
        ("https://EU.API.OPENAI.COM/v1", Target("https", "eu.api.openai.com", 443, "/v1")),
        ("http://[::1]:8443/x", Target("http", "::1", 8443, "/x")),
    ],
)
def test_parse_base_url(url: str, target: Target) -> None:
    assert parse_base_url(url) == target


@pytest.mark.parametrize(
    "url",
    ["", "api.openai.com/v1", "ftp://example.com", "https://", "http:///v1", "http://h:99999"],
)
def test_parse_base_url_rejects_what_is_not_an_http_base_url(url: str) -> None:
    with pytest.raises(ValueError):
        parse_base_url(url)


@pytest.mark.parametrize(
    ("path", "default_prefix", "target_prefix", "expected"),
    [
        # the provider's own endpoint: unchanged
        ("/v1/chat/completions", "/v1", "/v1", "/v1/chat/completions"),
        # an OpenAI-compatible server mounted elsewhere
        ("/v1/chat/completions", "/v1", "/openai/v1", "/openai/v1/chat/completions"),
        ("/v1/chat/completions", "/v1", "", "/chat/completions"),
        # the query string survives
        ("/v1/models?limit=2", "/v1", "/api/v1", "/api/v1/models?limit=2"),
        # providers whose base URL has no path (Anthropic): the path is kept and prefixed
        ("/v1/messages", "", "", "/v1/messages"),
        ("/v1/messages", "", "/proxy", "/proxy/v1/messages"),
        # groq's /openai/v1 onto a local server's /v1
        ("/openai/v1/chat/completions", "/openai/v1", "/v1", "/v1/chat/completions"),
        # a path outside the default prefix is only prefixed
        ("/health", "/v1", "/v1", "/v1/health"),
    ],
)
def test_upstream_path_maps_the_default_prefix_onto_the_target(
    path: str, default_prefix: str, target_prefix: str, expected: str
) -> None:
    assert upstream_path(path, default_prefix, target_prefix) == expected


@pytest.mark.parametrize("name", sorted(n for n, p in PROVIDERS.items() if p.default_base_url))
def test_every_provider_maps_onto_its_own_default_base_url_unchanged(name: str) -> None:
    provider = PROVIDERS[name]
    target = parse_base_url(provider.default_base_url)
    path = f"{provider.base_path}/chat/completions"
    assert upstream_path(path, provider.base_path, target.path_prefix) == path
    assert target.host in provider.hosts


# --- the probe --------------------------------------------------------------------------


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as srv:
        srv.bind((HOST, 0))
        srv.listen(8)
        yield srv.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])  # nothing listens here once the socket is closed


async def test_a_listening_port_is_reachable(listening_port: int) -> None:
    assert await UpstreamProbe().check(HOST, listening_port) is None


async def test_a_closed_port_is_unreachable(closed_port: int) -> None:
    assert await UpstreamProbe().check(HOST, closed_port) == "unreachable"


async def test_a_recent_answer_skips_the_probe(closed_port: int) -> None:
    probe = UpstreamProbe()
    probe.saw_answer(HOST, closed_port)
    assert await probe.check(HOST, closed_port) is None  # a probe would have said unreachable
    assert await UpstreamProbe().check(HOST, closed_port) == "unreachable"  # per instance


async def test_freshness_is_per_host_and_port(closed_port: int) -> None:
    probe = UpstreamProbe()
    probe.saw_answer("localhost", closed_port)
    probe.saw_answer(HOST, closed_port + 1 if closed_port < 65535 else closed_port - 1)
    assert await probe.check(HOST, closed_port) == "unreachable"


async def test_forget_makes_the_next_check_probe_again(closed_port: int) -> None:
    probe = UpstreamProbe()
    probe.saw_answer(HOST, closed_port)
    probe.forget(HOST, closed_port)
    probe.forget(HOST, closed_port)  # forgetting twice is fine
    assert await probe.check(HOST, closed_port) == "unreachable"


async def test_a_stale_answer_is_probed_again(
    closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = UpstreamProbe()
    probe.saw_answer(HOST, closed_port)
    monkeypatch.setattr(upstream, "FRESH_S", 0.0)
    assert await probe.check(HOST, closed_port) == "unreachable"


async def test_a_successful_probe_counts_as_a_fresh_answer() -> None:
    probe = UpstreamProbe()
    with socket.socket() as srv:
        srv.bind((HOST, 0))
        srv.listen(8)
        port = srv.getsockname()[1]
        assert await probe.check(HOST, port) is None
    # the server is gone, but it answered a moment ago: no second probe
    assert await probe.check(HOST, port) is None
    probe.forget(HOST, port)
    assert await probe.check(HOST, port) == "unreachable"


ABORT_ON_OVERFLOW = Path("/proc/sys/net/ipv4/tcp_abort_on_overflow")


@pytest.mark.skipif(
    not ABORT_ON_OVERFLOW.exists() or ABORT_ON_OVERFLOW.read_text().strip() != "0",
    reason="needs Linux dropping (not resetting) connections to a full accept queue",
)
async def test_a_server_that_never_accepts_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """A full accept queue makes the kernel drop new SYNs: the connect hangs."""
    monkeypatch.setattr(upstream, "PROBE_TIMEOUT_S", 0.3)
    with socket.socket() as srv:
        srv.bind((HOST, 0))
        srv.listen(0)
        port = srv.getsockname()[1]
        fillers = [socket.socket() for _ in range(4)]
        try:
            for s in fillers:
                s.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    s.connect((HOST, port))
            assert await UpstreamProbe().check(HOST, port) == "timeout"
        finally:
            for s in fillers:
                s.close()


def test_only_azure_has_no_fixed_upstream() -> None:
    assert [n for n, p in PROVIDERS.items() if p.keeps_destination] == ["azure"]
