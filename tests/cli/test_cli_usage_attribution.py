"""``tollkeeper usage --by user|tag``: spend per end user and per tag."""

import csv
import io
import json
from datetime import UTC, datetime

import pytest
from sqlmodel import Session

from addon.store.models import UsageRecord
from addon.store.usage_repo import insert_records

T0 = datetime(2025, 1, 1, 10, tzinfo=UTC)


@pytest.fixture
def records(store) -> None:
    def rec(n: int, **fields) -> UsageRecord:
        base = {"request_id": f"req-{n}", "created_at": T0, "provider": "openai"}
        return UsageRecord(**{**base, "project": "alpha", "input_tokens": 10, **fields})

    rows = [
        rec(1, end_user="alice", tags="chat,beta", cost_picousd=10**12),
        rec(2, end_user="alice", tags="chat", cost_picousd=None),
        rec(3, end_user="bob", cost_picousd=2 * 10**12, project="other"),
        rec(4, cost_picousd=0, created_at=datetime(2025, 2, 1, tzinfo=UTC)),
    ]
    with Session(store) as s:
        insert_records(session=s, records=rows)


def _json(ok, *args) -> dict:
    items = json.loads(ok("usage", "--format", "json", *args).stdout)
    field = "user" if "user" in args else "tag"
    return {i[field]: i for i in items}


@pytest.mark.usefixtures("records")
def test_by_user_sums_each_end_user_and_unpriced_stays_unpriced(ok):
    users = _json(ok, "--by", "user")
    assert set(users) == {"alice", "bob", None}
    assert (users["alice"]["requests"], users["alice"]["cost_usd"]) == (2, "1.00")
    assert users["alice"]["unpriced_requests"] == 1
    assert users["bob"]["cost_usd"] == "2.00"
    assert next(iter(users["alice"])) == "user"


@pytest.mark.usefixtures("records")
def test_by_tag_counts_a_request_fully_under_each_tag(ok):
    tags = _json(ok, "--by", "tag")
    assert set(tags) == {"chat", "beta", None}
    assert (tags["chat"]["requests"], tags["chat"]["input_tokens"]) == (2, 20)
    assert (tags["beta"]["requests"], tags["beta"]["cost_usd"]) == (1, "1.00")
    assert tags[None]["requests"] == 2


@pytest.mark.usefixtures("records")
def test_the_period_and_project_filters_apply(ok):
    assert set(_json(ok, "--by", "user", "--project", "alpha")) == {"alice", None}
    assert set(_json(ok, "--by", "tag", "--until", "2025-01-31")) == {"chat", "beta", None}
    assert set(_json(ok, "--by", "user", "--since", "2025-02-01")) == {None}


@pytest.mark.usefixtures("records")
def test_the_tag_table_has_no_total_and_says_why_and_the_user_table_has_one(ok):
    result = ok("usage", "--by", "tag")
    assert "TOTAL" not in result.stdout and "chat" in result.stdout
    assert "counts fully under each" in result.stderr
    users = ok("usage", "--by", "user").stdout
    assert "TOTAL" in users and "(none)" in users


@pytest.mark.usefixtures("records")
def test_csv_by_tag_has_the_tag_column_first(ok):
    rows = list(csv.DictReader(io.StringIO(ok("usage", "--by", "tag", "--format", "csv").stdout)))
    assert {r["tag"] for r in rows} == {"chat", "beta", ""}


def test_the_help_says_how_tags_are_counted(ok):
    text = " ".join(ok("usage", "--help").stdout.split())
    assert "counts fully under a and under b" in text
