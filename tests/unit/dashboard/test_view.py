from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine

from addon.dashboard.view import Dashboard, scope_from_query


def test_the_query_string_gives_the_scope() -> None:
    scope = scope_from_query("since=2025-01-01&until=2025-01-31&project=a&key=k1&bucket=hour")
    assert scope.since == datetime(2025, 1, 1, tzinfo=UTC)
    assert scope.until == datetime(2025, 2, 1, tzinfo=UTC)  # a plain date includes that day
    assert (scope.project, scope.key_id, scope.bucket) == ("a", "k1", "hour")
    assert scope_from_query("") == scope_from_query("project=&bucket=")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("bucket=week", "bucket must be day or hour"),
        ("since=yesterday", "is not a date"),
        ("since=2025-02-01&until=2025-01-01", "since must be before until"),
        ("project=" + "x" * 300, "too long"),
    ],
)
def test_a_bad_query_is_a_value_error(query: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        scope_from_query(query)


def test_the_dashboard_answers_html_and_json(engine: Engine) -> None:
    dashboard = Dashboard(engine, lambda: [("openai", "main", "cooling")])
    assert dashboard.page("project=alpha").startswith(b"<!doctype html>")
    import json

    data = json.loads(dashboard.json("project=alpha"))
    assert [p["project"] for p in data["projects"]] == ["alpha"]
