"""Fixtures for the fake upstream's own tests: one server per module, reset for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fakes.upstream import FakeUpstream

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


@pytest.fixture
def up(server: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeUpstream]:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    server.reset()
    yield server
    assert server.errors == []
