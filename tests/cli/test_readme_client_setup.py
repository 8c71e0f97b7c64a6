"""The README's client set-up says what the code does: the mitmweb command by hand is the one
`serve --web` runs, and the variables it names are those `client-env` prints."""

from __future__ import annotations

import json
import re
from pathlib import Path

from cli import serve
from cli.client_env import reverse_env

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(f"### {title}\n")
    return README[start : README.index("\n### ", start + 1)]


def test_mitmweb_by_hand_has_the_columns_serve_web_sets_one_set_each():
    text = _section("mitmweb")
    assert re.findall(r"--set web_columns=(\w+)", text) == list(serve.WEB_COLUMNS)
    assert "web_columns=tls," not in README  # a comma list is one (unknown) column
    assert "--mode regular@127.0.0.1:8080" in text  # mitmweb alone listens everywhere
    assert "?token=" in text and "web_password" in text


def test_base_url_section_shows_what_client_env_prints(run_cli, tmp_path):
    text = _section("Base URL (reverse listeners, no CA)")
    for name, value in reverse_env(
        host="127.0.0.1", openai_port=8081, anthropic_port=8082, gemini_port=8083
    ).items():
        assert f"export {name}={value}" in text
    assert "--openai-port 8081 --anthropic-port 8082 --gemini-port 8083" in text
    printed = json.loads(run_cli("client-env", "--json", "--confdir", str(tmp_path)).stdout)
    forward = _section("Forward proxy (no code change)")
    for name in printed["forward_proxy"]:
        assert f"export {name}=" in forward
