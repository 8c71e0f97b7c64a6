"""The usage dashboard of a real mitmdump, and ``tollkeeper report --html``, in headless
Chromium: the page loads, its charts are drawn, and its numbers are ``tollkeeper usage``'s."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import openai
import pytest
from browser import dump_dom, page, read_tables, require_chromium
from integration.conftest import Stack
from integration.harness import wait_for

SCREENS = Path(os.environ.get("TOLLKEEPER_SCREENS", "/work/screens"))
FIELDS = ("project", "requests", "input_tokens", "output_tokens", "cost_usd", "error_requests")
# For each canvas: its size and how many of its pixels were painted; and each chart's data.
READ_CHARTS = """
const out = {};
for (const c of document.querySelectorAll("canvas")) {
  const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let painted = 0;
  for (let i = 3; i < px.length; i += 4) if (px[i] > 0) painted++;
  const chart = window.tollkeeperCharts[c.id];
  out[c.id] = {width: c.width, height: c.height, painted,
    datasets: chart.data.datasets.map(d => ({label: d.label, data: d.data}))};
}
return {charts: out, html: document.documentElement.outerHTML};
"""


@pytest.fixture(scope="module")
def traffic(stack: Stack) -> dict[str, str]:
    """Requests of two projects through the gateway, one refused; waits until recorded."""
    mp = pytest.MonkeyPatch()
    try:
        alpha = stack.cli.new_key("dash-alpha", "--budget", "5", "--budget-period", "daily")
        beta = stack.cli.new_key("dash-beta")
        client = stack.openai_reverse(alpha["key"], mp)
        for _ in range(3):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
            )
        stack.anthropic_reverse(beta["key"], mp).messages.create(
            model="claude-haiku-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
        with pytest.raises(openai.AuthenticationError):
            stack.openai_reverse("tk-nothere000-" + "0" * 40, mp).models.list()
    finally:
        mp.undo()
    assert wait_for(lambda: _requests(stack) == 5, timeout=20), stack.cli.json("usage", "--json")
    return {"alpha": alpha["id"], "beta": beta["id"]}


def _requests(stack: Stack) -> int:
    return sum(int(i["requests"]) for i in stack.cli.json("usage", "--format", "json"))


def _shown(item: dict[str, Any], field: str) -> str:
    value = item[field]
    if field == "cost_usd":
        return "unpriced" if value is None else f"${value}"
    if value is None:
        return "(none)"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _check_numbers(stack: Stack, html: str, *args: str) -> dict[str, list[dict[str, str]]]:
    tables = read_tables(html)
    usage = stack.cli.json("usage", "--format", "json", *args)
    rows = {r["project"]: r for r in tables["projects"]}
    assert sorted(rows) == sorted(_shown(i, "project") for i in usage)
    for item in usage:
        row = rows[_shown(item, "project")]
        assert {f: row[f] for f in FIELDS} == {f: _shown(item, f) for f in FIELDS}
    return tables


def _check_charts(charts: dict[str, Any], projects: set[str]) -> None:
    assert set(charts) == {"chart-cost", "chart-tokens", "chart-models"}
    for name, chart in charts.items():
        assert chart["width"] > 0 and chart["height"] > 0, name
        assert chart["painted"] > 0.01 * chart["width"] * chart["height"], name
    assert {d["label"] for d in charts["chart-cost"]["datasets"]} == projects


def _screens(shot: Path, name: str) -> None:
    assert shot.stat().st_size > 10_000  # a PNG with something on it
    SCREENS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, SCREENS / name)


def test_dashboard_in_chromium(stack: Stack, traffic: dict[str, str], tmp_path: Path) -> None:
    require_chromium(driver=True)
    with page(stack.gateway.admin_url + "/dashboard") as p:
        seen = p.evaluate(READ_CHARTS)
        shot = p.screenshot(tmp_path / "dashboard.png", full_page=True)
    tables = _check_numbers(stack, seen["html"])
    projects = {"(none)", "dash-alpha", "dash-beta"}  # the refused request has no project
    _check_charts(seen["charts"], projects)
    budget = next(b for b in tables["budgets"] if b["key_id"] == traffic["alpha"])
    assert budget["budget_usd"] == "$5.00" and budget["period"] == "daily"
    spent = stack.cli.json("keys", "show", traffic["alpha"], "--json")["spent_usd"]
    assert budget["spent_usd"] == f"${spent}"
    errors = {r["error_kind"]: r for r in tables["errors"]}
    assert errors["invalid_key"]["upstream"] == "no"
    assert {r["label"] for r in tables["real-keys"]} == {"main"}
    assert len(tables["recent"]) == 5
    _screens(shot, "dashboard.png")


def test_dashboard_drill_down_to_a_key(stack: Stack, traffic: dict[str, str]) -> None:
    require_chromium()
    html = dump_dom(f"{stack.gateway.admin_url}/dashboard?key={traffic['beta']}")
    recent = read_tables(html)["recent"]
    assert [r["key_id"] for r in recent] == [traffic["beta"]]
    assert recent[0]["model"].startswith("claude-haiku-4-5")
    assert 'id="tk-data"' in html and "<canvas" in html


def test_report_file_in_chromium(stack: Stack, traffic: dict[str, str], tmp_path: Path) -> None:
    require_chromium(driver=True)
    out = tmp_path / "report.html"
    stack.cli.run("report", "--html", str(out), "--project", "dash-alpha")
    with page(out.as_uri()) as p:
        seen = p.evaluate(READ_CHARTS)
        filtered = p.evaluate(
            """const s = document.querySelector("#recent-requests .filter select");
            s.value = "key:" + arguments[0]; s.dispatchEvent(new Event("change"));
            return document.querySelectorAll("#recent tbody tr:not(.hidden)").length;""",
            traffic["alpha"],
        )
        shot = p.screenshot(tmp_path / "report.png", full_page=True)
    _check_numbers(stack, seen["html"], "--project", "dash-alpha")
    _check_charts(seen["charts"], {"dash-alpha"})
    assert filtered == 3
    _screens(shot, "report.png")
