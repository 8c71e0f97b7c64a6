"""Headless Debian Chromium for page tests: the DOM after scripts ran, a screenshot, and a
script evaluated in the loaded page (through ChromeDriver's W3C WebDriver HTTP API, so no
Selenium is needed).

Tests call ``require_chromium()`` first: it skips them, saying why, when Chromium is not
installed, unless ``TOLLKEEPER_REQUIRE_CHROMIUM=1`` (CI), where a missing browser fails.
Every browser gets a fresh profile and no network of its own (no updates, no sync).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("TOLLKEEPER_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("TOLLKEEPER_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--window-size=1400,1000",
)
TIMEOUT_S = 60


def require_chromium(*, driver: bool = False) -> None:
    """Skip (or, with TOLLKEEPER_REQUIRE_CHROMIUM=1, fail) when the browser is missing."""
    needed = [CHROMIUM, CHROMEDRIVER] if driver else [CHROMIUM]
    missing = [p for p in needed if not (Path(p).is_file() and os.access(p, os.X_OK))]
    if not missing:
        return
    why = f"headless Chromium test: {', '.join(missing)} not installed (apt-get install chromium)"
    if os.environ.get("TOLLKEEPER_REQUIRE_CHROMIUM") == "1":
        pytest.fail(why, pytrace=False)
    pytest.skip(why)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="tk-chromium-") as profile:
        cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, check=True)


def dump_dom(url: str, *, budget_ms: int = 5000) -> str:
    """The document after its scripts ran (``--dump-dom``)."""
    return _run(f"--virtual-time-budget={budget_ms}", "--dump-dom", url).stdout


def screenshot(url: str, path: Path, *, budget_ms: int = 5000) -> Path:
    """A PNG of the page at 1400x1000."""
    _run(f"--virtual-time-budget={budget_ms}", f"--screenshot={path}", url)
    assert path.stat().st_size > 0, f"chromium wrote no screenshot to {path}"
    return path


class Page:
    """One WebDriver session on one loaded page."""

    def __init__(self, base: str, session: str) -> None:
        self.base, self.session = base, session

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        return _request(method, f"{self.base}/session/{self.session}{path}", body)

    def evaluate(self, script: str, *args: Any) -> Any:
        """Run ``script`` (a function body; ``arguments`` holds ``args``) and return its value."""
        return self._call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def reload(self) -> None:
        self._call("POST", "/refresh", {})

    def screenshot(self, path: Path, *, full_page: bool = False) -> Path:
        """A PNG of the window; ``full_page`` first makes the window as tall as the page."""
        if full_page:
            height = self.evaluate("return document.documentElement.scrollHeight;")
            self._call("POST", "/window/rect", {"width": 1400, "height": min(int(height), 8000)})
        path.write_bytes(base64.b64decode(self._call("GET", "/screenshot")))
        return path


def _request(method: str, url: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback
    req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=TIMEOUT_S) as answer:  # noqa: S310 - loopback
        return json.loads(answer.read())["value"]


@contextmanager
def page(url: str) -> Iterator[Page]:
    """Chromium driven by ChromeDriver, with ``url`` loaded (navigation waits for load)."""
    from integration.harness import free_port

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    profile = tempfile.mkdtemp(prefix="tk-chromium-")
    driver = subprocess.Popen(
        [CHROMEDRIVER, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_ready(base, driver)
        options = {"binary": CHROMIUM, "args": [*FLAGS, f"--user-data-dir={profile}"]}
        caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": options}}}
        session = _request("POST", f"{base}/session", caps)["sessionId"]
        try:
            current = Page(base, session)
            current._call("POST", "/url", {"url": url})
            yield current
        finally:
            _request("DELETE", f"{base}/session/{session}")
    finally:
        driver.terminate()
        driver.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


def _wait_ready(base: str, driver: subprocess.Popen[bytes]) -> None:
    from integration.harness import wait_for

    def ready() -> bool:
        if driver.poll() is not None:
            raise RuntimeError(f"chromedriver exited with {driver.returncode}")
        try:
            return bool(_request("GET", f"{base}/status").get("ready"))
        except OSError:
            return False

    if not wait_for(ready, timeout=TIMEOUT_S):
        raise RuntimeError("chromedriver did not become ready")


class _Tables(HTMLParser):
    """Collects each ``<table id=…>``'s rows as {data-field: text} dicts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[dict[str, str]]] = {}
        self._table: str | None = None
        self._field: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("id"):
            self._table = a["id"]
            self.tables[self._table] = []
        elif tag == "tr" and self._table and "empty" not in (a.get("class") or ""):
            self.tables[self._table].append({})
        elif tag == "td" and self._table and a.get("data-field"):
            self._field = a["data-field"]
            self.tables[self._table][-1][self._field] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._field = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._table and self._field:
            self.tables[self._table][-1][self._field] += data


def read_tables(html: str) -> dict[str, list[dict[str, str]]]:
    """The dashboard's tables by id: one {field: shown text} per body row."""
    parser = _Tables()
    parser.feed(html)
    return {name: [r for r in rows if r] for name, rows in parser.tables.items()}
