"""Fixtures for end-to-end tests: a fake provider, a real mitmdump with the addon, the CLI.

The official SDKs are the clients. Proxy and CA settings are set per test (the machine
sets SSL_CERT_FILE globally; through the proxy the mitmproxy CA must be trusted instead).
"""

from __future__ import annotations

import gc
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anthropic
import openai
import pytest
from fakes.upstream import FakeUpstream
from integration.harness import STARTED, Cli, GatewayProcess

OPENAI_REAL = "sk-proj-REALopenaiKEY0000000000000000000000000001"
ANTHROPIC_REAL = "sk-ant-api03-REALanthropicKEY00000000000000000001"

pytestmark = pytest.mark.integration
T = TypeVar("T")


@dataclass
class Stack:
    upstream: FakeUpstream
    cli: Cli
    gateway: GatewayProcess
    workdir: Path

    clients: list[Any] = field(default_factory=list)

    def track(self, client: T) -> T:
        """Close ``client`` (and its sockets) when the test ends."""
        self.clients.append(client)
        return client

    def openai_forward(self, key: str, mp: pytest.MonkeyPatch) -> openai.OpenAI:
        self._proxy_env(mp)
        return self.track(openai.OpenAI(api_key=key, max_retries=0, timeout=20))

    def anthropic_forward(self, key: str, mp: pytest.MonkeyPatch) -> anthropic.Anthropic:
        self._proxy_env(mp)
        return self.track(anthropic.Anthropic(api_key=key, max_retries=0, timeout=20))

    def openai_reverse(self, key: str, mp: pytest.MonkeyPatch) -> openai.OpenAI:
        _no_proxy_env(mp)
        return self.track(
            openai.OpenAI(
                api_key=key,
                base_url=self.gateway.reverse_url("openai") + "/v1",
                max_retries=0,
                timeout=20,
            )
        )

    def anthropic_reverse(self, key: str, mp: pytest.MonkeyPatch) -> anthropic.Anthropic:
        _no_proxy_env(mp)
        return self.track(
            anthropic.Anthropic(
                api_key=key,
                base_url=self.gateway.reverse_url("anthropic"),
                max_retries=0,
                timeout=20,
            )
        )

    def close_clients(self) -> None:
        for client in self.clients:
            close = getattr(client, "close", None)
            if callable(close):
                close()
        self.clients.clear()

    def _proxy_env(self, mp: pytest.MonkeyPatch) -> None:
        _no_proxy_env(mp)
        mp.setenv("HTTPS_PROXY", self.gateway.proxy_url)
        mp.setenv("SSL_CERT_FILE", self.gateway.ca_cert)
        mp.setenv("REQUESTS_CA_BUNDLE", self.gateway.ca_cert)


def _no_proxy_env(mp: pytest.MonkeyPatch) -> None:
    for name in (
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "ALL_PROXY",
        "https_proxy",
        "http_proxy",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ):
        mp.delenv(name, raising=False)


def build_stack(
    tmp: Path,
    *,
    db_url: str | None = None,
    extra_args: tuple[str, ...] = (),
    program: str = "mitmdump",
    reverse: tuple[str, ...] = ("openai", "anthropic"),
) -> Iterator[Stack]:
    home = tmp / "home"
    home.mkdir()
    with FakeUpstream() as up:
        cli = Cli(home, db_url)
        cli.add_provider("openai", OPENAI_REAL, up.base_url + "/v1")
        cli.add_provider("anthropic", ANTHROPIC_REAL, up.base_url)
        gw = GatewayProcess(
            tmp, home, db_url=db_url, extra_args=extra_args, program=program, reverse=reverse
        )
        with gw:
            stack = Stack(up, cli, gw, tmp)
            try:
                yield stack
            finally:
                stack.close_clients()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One gateway shared by a module's tests; each test makes its own keys."""
    yield from build_stack(tmp_path_factory.mktemp("stack"))


@pytest.fixture
def fresh_stack(tmp_path: Path) -> Iterator[Stack]:
    """A gateway of the test's own, for tests that restart it or change its pools."""
    yield from build_stack(tmp_path)


LOG_TAIL_LINES = 60


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed test's report ends with the log tail of every gateway that ran during it:
    a failure seen once in CI can then be read, not only rerun."""
    report = yield
    if report.failed and call.when in ("setup", "call"):
        for gw in STARTED:
            if gw.ran_since(call.start):
                tail = "\n".join(gw.log().splitlines()[-LOG_TAIL_LINES:])
                report.sections.append((f"gateway log {gw.log_path}", tail))
    return report


@pytest.fixture(autouse=True)
def _reset_upstream(request: pytest.FixtureRequest) -> None:
    if "stack" in request.fixturenames:
        request.getfixturevalue("stack").upstream.reset()


@pytest.fixture(scope="module", autouse=True)
def _frozen_heap() -> None:
    """Put what is alive when a module starts (imported SDKs, collected tests, the recorded
    traffic) out of the collector's reach, so that the collection after every test walks
    only what tests made since: a full one took about 0.4 s, after each of 700 tests."""
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def _close_clients(request: pytest.FixtureRequest) -> Iterator[None]:
    """Close the SDK clients a test used, then collect what an SDK left unclosed inside
    (pooled TLS sockets of copies made by ``with_options``), here rather than inside
    whichever later test the garbage collector happens to run in."""
    yield
    if "stack" in request.fixturenames:  # function-scoped stacks close their own
        request.getfixturevalue("stack").close_clients()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
