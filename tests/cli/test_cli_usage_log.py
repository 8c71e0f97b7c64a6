"""``tollkeeper usage log``: one row per request, newest first, filtered."""

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from addon.store.models import UsageRecord
from addon.store.usage_repo import insert_records

T0 = datetime(2025, 1, 1, 10, tzinfo=UTC)
FIRST = {
    "time": "2025-01-01T10:00:00Z",
    "request_id": "req-1",
    "key_id": "k1",
    "project": "alpha",
    "provider": "openai",
    "model": "gpt-4o",
    "endpoint": "/v1/chat/completions",
    "status": 200,
    "input_tokens": 1000,
    "cached_input_tokens": 200,
    "cache_write_tokens": 0,
    "output_tokens": 500,
    "reasoning_tokens": 100,
    "cost_usd": "0.00123456789",
    "latency_ms": 850,
    "ttfb_ms": 120,
    "streamed": True,
    "estimated": False,
    "error_kind": None,
    "provider_request_id": "req_abc",
    "user": "alice",
    "tags": ["chat", "beta"],
}


@pytest.fixture
def records(store) -> None:
    def rec(n: int, **fields) -> UsageRecord:
        base = {
            "request_id": f"req-{n}",
            "created_at": T0 + timedelta(minutes=n - 1),
            "provider": "openai",
            "virtual_key_id": "k1",
            "project": "alpha",
            "model": "gpt-4o",
            "status_code": 200,
        }
        return UsageRecord(**{**base, **fields})

    rows = [
        rec(
            1,
            endpoint="/v1/chat/completions",
            input_tokens=1000,
            cached_input_tokens=200,
            output_tokens=500,
            reasoning_tokens=100,
            cost_picousd=1_234_567_890,
            latency_ms=850,
            ttfb_ms=120,
            streamed=True,
            provider_request_id="req_abc",
            end_user="alice",
            tags="chat,beta",
        ),
        rec(2, model="mystery", cost_picousd=None, virtual_key_id="k2", project="beta"),
        rec(3, status_code=429, error_kind="budget_exceeded", cost_picousd=0),
        rec(4, status_code=None, error_kind="client_disconnected", estimated=True, cost_picousd=0),
    ]
    with Session(store) as s:
        insert_records(session=s, records=rows)


def _ids(ok, *args) -> list[str]:
    return [
        r["request_id"] for r in json.loads(ok("usage", "log", "--format", "json", *args).stdout)
    ]


@pytest.mark.usefixtures("records")
def test_json_rows_carry_every_field_newest_first(ok):
    rows = json.loads(ok("usage", "log", "--format", "json").stdout)
    assert [r["request_id"] for r in rows] == ["req-4", "req-3", "req-2", "req-1"]
    assert rows[-1] == FIRST
    assert list(rows[-1]) == list(FIRST)  # stable field order
    assert rows[2]["cost_usd"] is None  # unpriced, never $0
    assert rows[0]["status"] is None and rows[0]["estimated"] is True


@pytest.mark.usefixtures("records")
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--project", "beta"], ["req-2"]),
        (["--key", "k2"], ["req-2"]),
        (["--model", "MYST*"], ["req-2"]),
        (["--status", "429"], ["req-3"]),
        (["--status", "error"], ["req-4", "req-3"]),
        (
            ["--since", "2025-01-01T10:01:00Z", "--until", "2025-01-01T10:03:00Z"],
            ["req-3", "req-2"],
        ),
        (["--limit", "1"], ["req-4"]),
        (["--until", "2024-12-31"], []),
    ],
)
def test_filters(ok, args, expected):
    assert _ids(ok, *args) == expected


@pytest.mark.usefixtures("records")
def test_csv_says_unpriced_and_joins_the_tags(ok):
    rows = list(csv.DictReader(io.StringIO(ok("usage", "log", "--format", "csv").stdout)))
    by_id = {r["request_id"]: r for r in rows}
    assert by_id["req-2"]["cost_usd"] == "unpriced"
    assert by_id["req-1"]["tags"] == "chat,beta"
    assert by_id["req-1"]["cost_usd"] == "0.00123456789"
    assert list(rows[0]) == list(FIRST)


@pytest.mark.usefixtures("records")
def test_the_table_shows_one_line_per_request(ok):
    lines = ok("usage", "log").stdout.splitlines()
    assert lines[0].startswith("TIME (UTC)") and len(lines) == 5
    first = lines[-1]
    for cell in ("2025-01-01 10:00:00", "k1", "alpha", "gpt-4o", "$0.00123456789", "850"):
        assert cell in first
    for cell in ("req_abc", "alice", "chat,beta"):
        assert cell in first
    assert "unpriced" in lines[-2]


def test_an_empty_log_says_so_on_stderr(ok):
    result = ok("usage", "log")
    assert result.stdout == "" and "No requests match" in result.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--status", "teapot"], "not an HTTP status"),
        (["--status", "99"], "not an HTTP status"),
        (["--limit", "0"], "--limit"),
        (["--model", " "], "--model must not be empty"),
        (["--since", "2025-02-01", "--until", "2025-01-01"], "--since must be before"),
        (["--since", "yesterday-ish"], "is not a date"),
    ],
)
def test_bad_options_give_one_line_errors(tk, one_line_error, args, fragment):
    one_line_error(tk("usage", "log", *args), fragment)


def test_report_options_before_log_are_refused(tk, one_line_error):
    one_line_error(tk("usage", "--by", "model", "log"), "belongs to the usage report")
