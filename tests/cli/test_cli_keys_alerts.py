"""``keys create/update --alert-at`` and what ``keys show`` says about fired alerts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from addon.alerts import Alert
from addon.store import alerts_repo
from addon.store.audit_repo import list_events

USD = 10**12


def _create(ok, *args):
    return json.loads(ok("keys", "create", "--project", "search", "--json", *args).stdout)


def test_create_keeps_thresholds_sorted_and_shows_them(ok):
    data = _create(ok, "--budget", "10", "--budget-period", "daily", "--alert-at", "100,50,80")
    assert data["alert_at"] == [50, 80, 100]
    shown = json.loads(ok("keys", "show", data["id"], "--json").stdout)
    assert shown["alert_at"] == [50, 80, 100] and shown["alerts_fired"] == []
    text = ok("keys", "show", data["id"]).stdout
    assert "alerts at:" in text and "50%, 80%, 100%" in text
    assert "none this period" in text


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("0", "out of range"),
        ("1001", "out of range"),
        ("50,50", "given twice"),
        ("5o", "whole number"),
        ("50,,80", "percentages"),
    ],
)
def test_bad_thresholds_are_one_line_errors(tk, one_line_error, value, fragment):
    result = tk("keys", "create", "--project", "p", "--budget", "5", "--alert-at", value)
    one_line_error(result, "--alert-at", fragment)


def test_alerts_need_a_budget(tk, ok, one_line_error):
    one_line_error(
        tk("keys", "create", "--project", "p", "--alert-at", "50"), "--alert-at needs a budget"
    )
    key = _create(ok)["id"]
    one_line_error(tk("keys", "update", key, "--alert-at", "50"), "--alert-at needs a budget")
    one_line_error(tk("keys", "update", key, "--no-budget", "--alert-at", "50"), "needs a budget")


def test_update_sets_clears_and_audits_thresholds(ok, store):
    key = _create(ok, "--budget", "10")["id"]
    updated = json.loads(ok("keys", "update", key, "--alert-at", "75", "--json").stdout)
    assert updated["alert_at"] == [75]
    assert json.loads(ok("keys", "update", key, "--rpm", "5", "--json").stdout)["alert_at"] == [75]
    cleared = json.loads(ok("keys", "update", key, "--alert-at", "none", "--json").stdout)
    assert cleared["alert_at"] == []
    with Session(store) as s:
        details = [json.loads(e.details_json) for e in list_events(session=s) if e.target == key]
    assert {"alert_at": [75]} in details and {"alert_at": []} in details


def test_removing_the_budget_removes_its_alerts(ok):
    key = _create(ok, "--budget", "10", "--alert-at", "50")["id"]
    data = json.loads(ok("keys", "update", key, "--no-budget", "--json").stdout)
    assert data["budget_usd"] is None and data["alert_at"] == []


def test_show_lists_the_alerts_fired_this_period_with_their_delivery(ok, store):
    key = _create(ok, "--budget", "10", "--budget-period", "daily", "--alert-at", "50,100")["id"]
    now = datetime.now(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    yesterday = today - timedelta(days=1)
    with Session(store) as s:
        for threshold, start, delivery in [(50, today, "sent"), (100, today, "pending")]:
            alert = Alert(key, "search", threshold, 6 * USD, 10 * USD, "daily", start, "gw", now)
            assert alerts_repo.claim(s, alert, delivery=delivery)
        # an older period's alert is not this period's
        old = Alert(key, "search", 100, 10 * USD, 10 * USD, "daily", yesterday, "gw", now)
        assert alerts_repo.claim(s, old, delivery="sent")
    shown = json.loads(ok("keys", "show", key, "--json").stdout)
    fired = [(a["threshold_percent"], a["delivery"]) for a in shown["alerts_fired"]]
    assert fired == [(50, "sent"), (100, "pending")]
    assert shown["alerts_fired"][0]["period_start"] == today.strftime("%Y-%m-%d")
    text = ok("keys", "show", key).stdout
    assert "alerts fired:" in text and "50% at" in text and "(sent)" in text and "(sending)" in text
