"""`tollkeeper serve --web` as printed: a real mitmweb with the gateway, one request through
it, and the flow list in a real (headless Debian) Chromium showing the comment column with
project and cost. The screenshot goes to /work/screens/mitmweb-flows.png when that exists.

The DOM comes from ``chromium --dump-dom``. mitmweb draws the comment column 150 px wide,
which cuts the cost off; an operator widens it by dragging its edge (mitmweb keeps the width
in localStorage), so the screenshot is taken through ChromeDriver with that width set.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx2 as httpx
import pytest
from integration.conftest import Stack, build_stack
from integration.harness import Cli, _accepts, free_port, wait_for

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
)
SCREENS = Path("/work/screens")
PROJECT = "Web Team"
# what dragging the comment column's edge stores (mitmweb's own localStorage key)
WIDEN_COMMENT = "localStorage.setItem('mitmweb-column-widths', JSON.stringify({comment: 600}))"


def _chromium() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if os.environ.get("TOLLKEEPER_REQUIRE_CHROMIUM") == "1":
        pytest.fail("TOLLKEEPER_REQUIRE_CHROMIUM=1 but chromium is not installed")
    pytest.skip("chromium is not installed (apt-get install chromium)")


def _headless(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """One headless Chromium run against a fresh profile, nothing fetched but ``url``."""
    with tempfile.TemporaryDirectory(prefix="tk-chromium-") as profile:
        command = [
            _chromium(),
            *FLAGS,
            f"--user-data-dir={profile}",
            "--virtual-time-budget=8000",
            *args,
            url,
        ]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)


def _driven_screenshot(url: str, script: str, ready: str) -> bytes:
    """A 1400x900 screenshot of ``url`` after ``script`` ran there and the page reloaded, once
    the script ``ready`` returns true (W3C WebDriver over HTTP; no Selenium needed)."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="tk-chromium-") as profile:
        driver = subprocess.Popen(
            [CHROMEDRIVER, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            assert wait_for(lambda: _accepts(port), timeout=20), "chromedriver did not start"
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as wd:
                options = {"binary": _chromium(), "args": [*FLAGS, f"--user-data-dir={profile}"]}
                caps = {"alwaysMatch": {"goog:chromeOptions": options}}
                session = wd.post("/session", json={"capabilities": caps}).json()["value"]
                at = f"/session/{session['sessionId']}"
                wd.post(f"{at}/window/rect", json={"width": 1400, "height": 900})
                wd.post(f"{at}/url", json={"url": url})
                wd.post(f"{at}/execute/sync", json={"script": script, "args": []})
                wd.post(f"{at}/refresh", json={})
                shown = wait_for(
                    lambda: wd.post(
                        f"{at}/execute/sync", json={"script": ready, "args": []}
                    ).json()["value"],
                    timeout=20,
                )
                png = base64.b64decode(wd.get(f"{at}/screenshot").json()["value"])
                assert shown, "the page never showed what the screenshot is for"
                wd.delete(at)
                return png
        finally:
            driver.terminate()
            driver.wait(timeout=20)


def _web_args(cli: Cli, web_port: int) -> list[str]:
    """The mitmweb settings `tollkeeper serve --web` prints (its --set web_* words)."""
    printed = cli.run("serve", "--web", "--web-port", str(web_port), "--dry-run").stdout
    words = shlex.split(printed)
    sets = [words[i : i + 2] for i, w in enumerate(words) if w == "--set"]
    return [w for pair in sets if pair[1].startswith("web_") for w in pair]


@pytest.fixture
def web_stack(tmp_path: Path) -> Iterator[tuple[Stack, int]]:
    _chromium()
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
    dom = _headless(url, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    cells = [
        html.unescape(c) for c in re.findall(r'<td class="col-comment">(.*?)</td>', dom.stdout)
    ]
    assert comment in cells, cells or dom.stdout[-3000:]
    assert "Comment" in dom.stdout  # the column header

    shot = stack.workdir / "mitmweb-flows.png"
    if Path(CHROMEDRIVER).exists():
        ready = (  # the whole comment is in view, not cut off
            "return [...document.querySelectorAll('td.col-comment')].some(td =>"
            f" td.textContent === {json.dumps(comment)} && td.scrollWidth <= td.clientWidth)"
        )
        shot.write_bytes(_driven_screenshot(url, WIDEN_COMMENT, ready))
    else:  # the plain screenshot: the comment column at its default width
        done = _headless(url, f"--screenshot={shot}", "--window-size=1400,900")
        assert done.returncode == 0, done.stderr[-2000:]
    assert shot.read_bytes().startswith(b"\x89PNG")
    if SCREENS.is_dir():
        shutil.copyfile(shot, SCREENS / "mitmweb-flows.png")
