"""`tollkeeper serve --web` as printed: a real mitmweb with the gateway, one request through
it, and the flow list in a real (headless Debian) Chromium showing the comment column with
project and cost. The screenshot goes to /work/screens/mitmweb-flows.png when that exists.

The DOM comes from ``chromium --dump-dom`` (tests/browser.py). mitmweb draws the comment column
150 px wide, which cuts the cost off; an operator widens it by dragging its edge (mitmweb keeps
the width in localStorage), so the screenshot is taken through ChromeDriver with that width set.
"""

from __future__ import annotations

import html
import json
import re
import shlex
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx2 as httpx
import pytest
from browser import CHROMEDRIVER, dump_dom, page, require_chromium, screenshot
from integration.conftest import Stack, build_stack
from integration.harness import Cli, _accepts, free_port, wait_for

SCREENS = Path("/work/screens")
PROJECT = "Web Team"
# what dragging the comment column's edge stores (mitmweb's own localStorage key)
WIDEN_COMMENT = "localStorage.setItem('mitmweb-column-widths', JSON.stringify({comment: 600}))"


def _web_args(cli: Cli, web_port: int) -> list[str]:
    """The mitmweb settings `tollkeeper serve --web` prints (its --set web_* words)."""
    printed = cli.run("serve", "--web", "--web-port", str(web_port), "--dry-run").stdout
    words = shlex.split(printed)
    sets = [words[i : i + 2] for i, w in enumerate(words) if w == "--set"]
    return [w for pair in sets if pair[1].startswith("web_") for w in pair]


@pytest.fixture
def web_stack(tmp_path: Path) -> Iterator[tuple[Stack, int]]:
    require_chromium()
    web_port = free_port()
    (tmp_path / "probe").mkdir()
    args = _web_args(Cli(tmp_path / "probe"), web_port)
    extra = (*args, "--set", "web_open_browser=false")
    for stack in build_stack(tmp_path, program="mitmweb", extra_args=extra):
        assert wait_for(lambda: _accepts(web_port), timeout=20), stack.gateway.log()
        yield stack, web_port


def _token(stack: Stack, web_port: int) -> str:
    pattern = rf"http://127\.0\.0\.1:{web_port}/\?token=(\w+)"
    found = wait_for(lambda: re.search(pattern, stack.gateway.log()), timeout=10)
    assert found, f"mitmweb logged no URL with its token:\n{stack.gateway.log()}"
    return found.group(1)


def test_flow_list_shows_project_and_cost(web_stack, monkeypatch) -> None:
    stack, web_port = web_stack
    key = stack.cli.new_key(PROJECT)["key"]
    client = stack.openai_reverse(key, monkeypatch)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    rows = wait_for(lambda: [r for r in stack.cli.usage() if r["project"] == PROJECT])
    assert rows and rows[0]["requests"] == 1

    token = _token(stack, web_port)
    base = f"http://127.0.0.1:{web_port}"
    flows = httpx.get(f"{base}/flows", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    (flow,) = [f for f in flows.json() if f["request"]["path"] == "/v1/chat/completions"]
    comment = flow["comment"]
    assert comment.startswith(f"{PROJECT} · gpt-4o-mini · ")
    shown_cost = re.search(r" · \$([0-9.]+)$", comment)
    assert shown_cost and Decimal(shown_cost.group(1)) == Decimal(rows[0]["cost_usd"]) > 0

    url = f"{base}/?token={token}"
    dom = dump_dom(url, budget_ms=8000)
    cells = [html.unescape(c) for c in re.findall(r'<td class="col-comment">(.*?)</td>', dom)]
    assert comment in cells, cells or dom[-3000:]
    assert "Comment" in dom  # the column header

    shot = stack.workdir / "mitmweb-flows.png"
    if Path(CHROMEDRIVER).exists():
        ready = (  # the whole comment is in view, not cut off
            "return [...document.querySelectorAll('td.col-comment')].some(td =>"
            f" td.textContent === {json.dumps(comment)} && td.scrollWidth <= td.clientWidth)"
        )
        with page(url) as shown:
            shown.evaluate(WIDEN_COMMENT)
            shown.reload()
            assert wait_for(lambda: shown.evaluate(ready), timeout=20), (
                "the page never showed what the screenshot is for"
            )
            shown.screenshot(shot)
    else:  # the plain screenshot: the comment column at its default width
        screenshot(url, shot, budget_ms=8000)
    assert shot.read_bytes().startswith(b"\x89PNG")
    if SCREENS.is_dir():
        shutil.copyfile(shot, SCREENS / "mitmweb-flows.png")
