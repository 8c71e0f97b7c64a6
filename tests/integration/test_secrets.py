"""A real key never shows: not in the flow file (-w), the log, the database, a CLI listing,
nor the flows mitmweb serves. Flows carry a comment for mitmweb; rejected flows are marked."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import openai
import pytest
from integration.conftest import ANTHROPIC_REAL, OPENAI_REAL, build_stack
from integration.harness import free_port, wait_for
from mitmproxy import io

SECRETS = (OPENAI_REAL.encode(), ANTHROPIC_REAL.encode())
MESSAGES = [{"role": "user", "content": "hi"}]


def _exercise(stack, monkeypatch) -> str:
    key = stack.cli.new_key("secrets")["key"]
    oa = stack.openai_forward(key, monkeypatch)
    oa.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    list(oa.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    stack.anthropic_forward(key, monkeypatch).messages.create(
        model="claude-haiku-4-5", max_tokens=8, messages=MESSAGES
    )
    stack.upstream.key_status[OPENAI_REAL] = 401  # the provider echoes (a masked) key back
    with pytest.raises(openai.AuthenticationError):
        oa.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    with pytest.raises(openai.AuthenticationError):
        stack.openai_forward("tk-wrong", monkeypatch).models.list()
    return key


def _files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()]


def test_flow_file_log_database_and_listings_hold_no_real_key(tmp_path: Path, monkeypatch):
    flows = tmp_path / "flows.mitm"
    gen = build_stack(tmp_path, extra_args=("-w", str(flows)))
    stack = next(gen)
    try:
        _exercise(stack, monkeypatch)
        wait_for(lambda: len(stack.cli.usage("project")) >= 2, timeout=5)
    finally:
        stack.gateway.stop()
        next(gen, None)

    for f in [flows, stack.gateway.log_path, *_files_under(tmp_path / "home")]:
        data = f.read_bytes()
        for secret in SECRETS:
            assert secret not in data, f"real key found in {f}"
    listing = (
        stack.cli.run("providers", "list").stdout
        + stack.cli.run("providers", "list", "--json").stdout
    )
    assert OPENAI_REAL not in listing and ANTHROPIC_REAL not in listing

    with flows.open("rb") as f:
        saved = list(io.FlowReader(f).stream())
    assert len(saved) == 5
    metered = [fl for fl in saved if fl.marked == ":moneybag:"]
    rejected = [fl for fl in saved if fl.response and fl.response.status_code == 401]
    assert len(metered) == 4 and len(rejected) == 2
    for fl in metered:
        assert fl.comment.startswith("secrets · "), fl.comment
        auth = fl.request.headers.get("authorization") or fl.request.headers.get("x-api-key")
        assert "[tollkeeper:redacted]" in auth
    gateway_reject = [fl for fl in rejected if "x-tollkeeper-error" in fl.response.headers]
    assert len(gateway_reject) == 1 and gateway_reject[0].marked == ":no_entry:"
    assert "rejected (invalid_key)" in gateway_reject[0].comment


def test_mitmweb_shows_comments_and_no_real_key(tmp_path: Path, monkeypatch):
    web_port = free_port()
    gen = build_stack(
        tmp_path,
        program="mitmweb",
        extra_args=(
            "--set",
            f"web_port={web_port}",
            "--set",
            "web_open_browser=false",
            "--set",
            "web_password=s3cret",
        ),
    )
    stack = next(gen)
    try:
        _exercise(stack, monkeypatch)
        req = urllib.request.Request(
            f"http://127.0.0.1:{web_port}/flows", headers={"Authorization": "Bearer s3cret"}
        )
        body = urllib.request.urlopen(req, timeout=10).read()  # noqa: S310 - loopback
    finally:
        stack.gateway.stop()
        next(gen, None)
    for secret in SECRETS:
        assert secret not in body
    flows = json.loads(body)
    comments = [f.get("comment", "") for f in flows]
    assert sum(c.startswith("secrets · ") for c in comments) == 4
