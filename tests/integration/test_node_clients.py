"""The official Node ``openai`` package through the gateway, on this machine's Node: by base
URL, through HTTPS_PROXY with undici's EnvHttpProxyAgent, and with NODE_USE_ENV_PROXY=1 where
this Node has it. scripts/setup installs the packages (pinned by scripts/node/) into .venv/node.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from fakes import payloads
from integration.conftest import OPENAI_REAL, Stack
from integration.harness import ROOT, wait_for

NODE = shutil.which("node")
MODULES = ROOT / ".venv" / "node" / "node_modules"
SCRIPT = ROOT / "tests" / "integration" / "node_client.cjs"

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed"),
    pytest.mark.skipif(
        not (MODULES / "openai").is_dir() or not (MODULES / "undici").is_dir(),
        reason="the Node openai/undici packages are missing: run scripts/setup (needs npm)",
    ),
]


def node_version() -> tuple[int, int]:
    out = subprocess.run([str(NODE), "--version"], capture_output=True, text=True, check=True)
    major, minor, *_ = out.stdout.strip().lstrip("v").split(".")
    return int(major), int(minor)


def has_env_proxy(version: tuple[int, int]) -> bool:
    """NODE_USE_ENV_PROXY: Node 24 and later, backported to 22.21."""
    return version >= (24, 0) or (22, 21) <= version < (23, 0)


def run_node(key: str, way: str, **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
    for name in ("OPENAI_BASE_URL", "NODE_EXTRA_CA_CERTS", "NODE_USE_ENV_PROXY"):
        clean.pop(name, None)
    full = {**clean, "OPENAI_API_KEY": key, "TK_WAY": way, "NODE_PATH": str(MODULES), **env}
    done = subprocess.run(
        [str(NODE), str(SCRIPT)], capture_output=True, text=True, env=full, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def check_metered(stack: Stack, project: str, answer: dict) -> None:
    assert answer["usage"]["prompt_tokens"] == payloads.OPENAI_CHAT_USAGE["prompt_tokens"]
    (seen,) = stack.upstream.requests
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["authorization"] == f"Bearer {OPENAI_REAL}"
    rows = wait_for(lambda: [r for r in stack.cli.usage() if r["project"] == project])
    assert rows and rows[0]["requests"] == 1
    assert rows[0]["input_tokens"] == payloads.OPENAI_CHAT_USAGE["prompt_tokens"]


def forward_env(stack: Stack) -> dict[str, str]:
    return {"HTTPS_PROXY": stack.gateway.proxy_url, "NODE_EXTRA_CA_CERTS": stack.gateway.ca_cert}


def test_node_openai_by_base_url(stack: Stack) -> None:
    key = stack.cli.new_key("node-base")["key"]
    base = stack.gateway.reverse_url("openai") + "/v1"
    answer = run_node(key, "base", OPENAI_BASE_URL=base)
    check_metered(stack, "node-base", answer)


def test_node_openai_through_the_proxy_with_undici_agent(stack: Stack) -> None:
    key = stack.cli.new_key("node-agent")["key"]
    answer = run_node(key, "agent", **forward_env(stack))
    check_metered(stack, "node-agent", answer)


def test_node_openai_through_the_proxy_with_node_use_env_proxy(stack: Stack) -> None:
    version = node_version()
    if not has_env_proxy(version):
        pytest.skip(f"Node {version[0]}.{version[1]} has no NODE_USE_ENV_PROXY (22.21+ / 24+)")
    key = stack.cli.new_key("node-env")["key"]
    answer = run_node(key, "env", NODE_USE_ENV_PROXY="1", **forward_env(stack))
    check_metered(stack, "node-env", answer)
