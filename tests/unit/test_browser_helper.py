"""The headless-Chromium helper skips without a browser, unless CI requires one."""

from __future__ import annotations

import browser
import pytest


def test_a_missing_browser_skips_with_the_reason(monkeypatch) -> None:
    monkeypatch.setattr(browser, "CHROMIUM", "/nonexistent/chromium")
    monkeypatch.delenv("TOLLKEEPER_REQUIRE_CHROMIUM", raising=False)
    with pytest.raises(pytest.skip.Exception, match="/nonexistent/chromium not installed"):
        browser.require_chromium()


def test_a_missing_browser_fails_when_required(monkeypatch) -> None:
    monkeypatch.setattr(browser, "CHROMEDRIVER", "/nonexistent/chromedriver")
    monkeypatch.setenv("TOLLKEEPER_REQUIRE_CHROMIUM", "1")
    with pytest.raises(pytest.fail.Exception, match="chromedriver not installed"):
        browser.require_chromium(driver=True)


def test_read_tables_gives_each_row_by_field() -> None:
    html = (
        '<table id="t"><thead><tr><th>A</th></tr></thead><tbody>'
        '<tr data-x="1"><td data-field="a">one &amp; <a href="#">two</a></td></tr>'
        '<tr class="empty"><td colspan="1">Nothing</td></tr></tbody></table>'
    )
    assert browser.read_tables(html) == {"t": [{"a": "one & two"}]}
