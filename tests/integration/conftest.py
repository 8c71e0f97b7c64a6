"""Fixtures for end-to-end tests: a fake provider, a real mitmdump with the addon, the CLI.

The official SDKs are the clients. Proxy and CA settings are set per test (the machine
sets SSL_CERT_FILE globally; through the proxy the mitmproxy CA must be trusted instead).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anthropic
import openai
import pytest
from fakes.upstream import FakeUpstream
from integration.harness import Cli, GatewayProcess

OPENAI_REAL = "sk-proj-REALopenaiKEY0000000000000000000000000001"
ANTHROPIC_REAL = "sk-ant-api03-REALanthropicKEY00000000000000000001"

pytestmark = pytest.mark.integration


@dataclass
class Stack:
    upstream: FakeUpstream
    cli: Cli
    gateway: GatewayProcess
    workdir: Path

    def openai_forward(self, key: str, mp: pytest.MonkeyPatch) -> openai.OpenAI:
        self._proxy_env(mp)
        return openai.OpenAI(api_key=key, max_retries=0, timeout=20)

    def anthropic_forward(self, key: str, mp: pytest.MonkeyPatch) -> anthropic.Anthropic:
        self._proxy_env(mp)
        return anthropic.Anthropic(api_key=key, max_retries=0, timeout=20)

    def openai_reverse(self, key: str, mp: pytest.MonkeyPatch) -> openai.OpenAI:
        _no_proxy_env(mp)
        return openai.OpenAI(
            api_key=key,
            base_url=self.gateway.reverse_url("openai") + "/v1",
            max_retries=0,
            timeout=20,
        )

    def anthropic_reverse(self, key: str, mp: pytest.MonkeyPatch) -> anthropic.Anthropic:
        _no_proxy_env(mp)
        return anthropic.Anthropic(
            api_key=key,
            base_url=self.gateway.reverse_url("anthropic"),
            max_retries=0,
            timeout=20,
        )

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
) -> Iterator[Stack]:
    home = tmp / "home"
    home.mkdir()
    with FakeUpstream() as up:
        cli = Cli(home, db_url)
        cli.add_provider("openai", OPENAI_REAL, up.base_url + "/v1")
        cli.add_provider("anthropic", ANTHROPIC_REAL, up.base_url)
        gw = GatewayProcess(tmp, home, db_url=db_url, extra_args=extra_args, program=program)
        with gw:
            yield Stack(up, cli, gw, tmp)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One gateway shared by a module's tests; each test makes its own keys."""
    yield from build_stack(tmp_path_factory.mktemp("stack"))


@pytest.fixture
def fresh_stack(tmp_path: Path) -> Iterator[Stack]:
    """A gateway of the test's own, for tests that restart it or change its pools."""
    yield from build_stack(tmp_path)


@pytest.fixture(autouse=True)
def _reset_upstream(request: pytest.FixtureRequest) -> None:
    if "stack" in request.fixturenames:
        request.getfixturevalue("stack").upstream.reset()
