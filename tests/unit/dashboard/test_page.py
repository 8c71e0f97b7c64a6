import json
import re
from datetime import UTC, datetime

from browser import read_tables
from sqlmodel import Session
from unit.dashboard.conftest import HOSTILE

from addon.dashboard.data import Scope, collect
from addon.dashboard.page import render, script_json

NOW = datetime(2025, 1, 3, tzinfo=UTC)


def _page(session: Session, *, live: bool, scope: Scope | None = None) -> tuple[dict, str]:
    data = collect(session=session, scope=scope or Scope(), now=NOW)
    return data, render(data, live=live)


def test_tables_show_the_numbers_of_the_data(session: Session) -> None:
    data, html = _page(session, live=False)
    projects = {r["project"]: r for r in read_tables(html)["projects"]}
    for item in data["projects"]:
        row = projects[item["project"]]
        assert row["requests"] == f"{item['requests']:,}"
        assert row["input_tokens"] == f"{item['input_tokens']:,}"
        shown = "unpriced" if item["cost_usd"] is None else f"${item['cost_usd']}"
        assert row["cost_usd"] == shown
    recent = read_tables(html)["recent"]
    assert len(recent) == len(data["recent"]) == 5


def test_names_from_clients_and_upstreams_are_escaped(session: Session) -> None:
    _, html = _page(session, live=True)
    assert HOSTILE not in html and "<img" not in html
    assert html.count("</script>") == html.count("<script")  # nothing closes a script early
    embedded = re.search(r'<script type="application/json" id="tk-data">(.*?)</script>', html)
    assert embedded is not None
    assert json.loads(embedded.group(1))["projects"][0]["project"] == HOSTILE


def test_script_json_cannot_close_the_script_element() -> None:
    text = script_json({"a": "</script><!-- & >"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"a": "</script><!-- & >"}


def test_the_page_loads_nothing_from_the_network(session: Session) -> None:
    _, html = _page(session, live=True)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "Chart.js v4" in html  # the vendored library, inlined
    assert '<canvas id="chart-cost">' in html and '<canvas id="chart-models">' in html


def test_live_pages_link_projects_and_keys_to_their_drill_down(session: Session) -> None:
    scope = Scope(since=datetime(2025, 1, 1, tzinfo=UTC), bucket="hour")
    _, html = _page(session, live=True, scope=scope)
    assert (
        'href="?since=2025-01-01T00%3A00%3A00Z&amp;bucket=hour&amp;project=alpha#recent-requests"'
        in html
    )
    assert (
        'href="?since=2025-01-01T00%3A00%3A00Z&amp;bucket=hour&amp;key=k1#recent-requests"' in html
    )
    _, report = _page(session, live=False, scope=scope)
    assert "?project=" not in report and "bucket=hour&amp;key" not in report
    assert 'data-live="0"' in report


def test_budget_rows_carry_a_bar(session: Session) -> None:
    from addon.dashboard.tables import budget_bar

    assert 'class="bar ok"' in budget_bar(10) and "width:10" in budget_bar(10)
    assert 'class="bar high"' in budget_bar(85)
    assert 'class="bar over"' in budget_bar(130) and "width:100.0%" in budget_bar(130)


def test_the_spend_card_says_how_many_requests_have_no_price(session: Session) -> None:
    data, html = _page(session, live=False)
    assert data["totals"]["unpriced_requests"] == 2
    assert "<small>+ 2 unpriced requests</small>" in html


def test_the_hourly_link_of_an_open_period_covers_the_last_48_hours(session: Session) -> None:
    _, html = _page(session, live=True)
    assert 'href="?since=2025-01-01T00%3A00%3A00Z&amp;bucket=hour">by hour (last 48 h)' in html
    _, drilled = _page(session, live=True, scope=Scope(key_id="k1", project="alpha"))
    assert "<h2>Recent requests of project alpha and key k1</h2>" in drilled
