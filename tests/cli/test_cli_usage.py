import csv
import io
import json
from datetime import UTC, datetime

import pytest
from sqlmodel import Session

from addon.store.models import UsageRecord
from addon.store.usage_repo import insert_records


def _record(n: int, when: datetime, **fields) -> UsageRecord:
    return UsageRecord(request_id=f"req-{n}", created_at=when, **fields)


@pytest.fixture
def records(store) -> None:
    rows = [
        _record(
            1,
            datetime(2025, 1, 1, 10, tzinfo=UTC),
            virtual_key_id="k1",
            project="alpha",
            provider="openai",
            model="gpt-4o",
            input_tokens=1000,
            cached_input_tokens=200,
            output_tokens=500,
            reasoning_tokens=100,
            cost_picousd=1_234_567_890,
        ),
        _record(
            2,
            datetime(2025, 1, 1, 23, 59, 59, tzinfo=UTC),
            virtual_key_id="k1",
            project="alpha",
            provider="openai",
            model="gpt-4o",
            input_tokens=10,
            output_tokens=5,
            cost_picousd=3,
        ),
        _record(
            3,
            datetime(2025, 1, 2, tzinfo=UTC),
            virtual_key_id="k2",
            project="beta",
            provider="anthropic",
            model="claude-x",
            input_tokens=2000,
            cache_write_tokens=300,
            output_tokens=100,
            cost_picousd=5 * 10**12,
            estimated=True,
            error_kind="client_disconnected",
        ),
        _record(
            4,
            datetime(2025, 1, 2, 12, tzinfo=UTC),
            virtual_key_id="k2",
            project="beta",
            provider="anthropic",
            model="mystery-model",
            input_tokens=700,
            output_tokens=70,
            cost_picousd=None,
        ),
        _record(
            5,
            datetime(2025, 1, 3, 8, tzinfo=UTC),
            virtual_key_id="k3",
            project="gamma",
            provider="groq",
            model="llama",
            input_tokens=100,
            output_tokens=10,
            cost_picousd=0,  # a free model: a real price of zero, not "unpriced"
        ),
    ]
    with Session(store) as s:
        insert_records(session=s, records=rows)


ALPHA = {
    "project": "alpha",
    "requests": 2,
    "input_tokens": 1010,
    "cached_input_tokens": 200,
    "cache_write_tokens": 0,
    "output_tokens": 505,
    "reasoning_tokens": 100,
    "cost_usd": "0.001234567893",
    "unpriced_requests": 0,
    "unpriced_input_tokens": 0,
    "unpriced_output_tokens": 0,
    "estimated_requests": 0,
    "error_requests": 0,
}
BETA = {
    "project": "beta",
    "requests": 2,
    "input_tokens": 2700,
    "cached_input_tokens": 0,
    "cache_write_tokens": 300,
    "output_tokens": 170,
    "reasoning_tokens": 0,
    "cost_usd": "5.00",
    "unpriced_requests": 1,
    "unpriced_input_tokens": 700,
    "unpriced_output_tokens": 70,
    "estimated_requests": 1,
    "error_requests": 1,
}


def _json(ok, *args) -> list[dict]:
    return json.loads(ok("usage", "--format", "json", *args).stdout)


def _by(items: list[dict], field: str) -> dict:
    return {i[field]: i for i in items}


@pytest.mark.usefixtures("records")
def test_json_by_project_has_exact_numbers_and_costs(ok):
    items = _by(_json(ok), "project")
    assert items["alpha"] == ALPHA
    assert items["beta"] == BETA
    assert items["gamma"]["cost_usd"] == "0.00" and items["gamma"]["unpriced_requests"] == 0
    assert list(items["alpha"]) == list(ALPHA)  # stable field order


@pytest.mark.usefixtures("records")
@pytest.mark.parametrize(
    ("by", "field", "expected"),
    [
        ("project", "project", {"alpha": 2, "beta": 2, "gamma": 1}),
        ("key", "key_id", {"k1": 2, "k2": 2, "k3": 1}),
        ("model", "model", {"gpt-4o": 2, "claude-x": 1, "mystery-model": 1, "llama": 1}),
        ("provider", "provider", {"openai": 2, "anthropic": 2, "groq": 1}),
        ("day", "day", {"2025-01-01": 2, "2025-01-02": 2, "2025-01-03": 1}),
    ],
)
def test_every_grouping(ok, by, field, expected):
    items = _json(ok, "--by", by)
    assert {i[field]: i["requests"] for i in items} == expected
    assert all(set(i) == {field, *list(ALPHA)[1:]} for i in items)


@pytest.mark.usefixtures("records")
def test_grouping_by_model_separates_unpriced_usage(ok):
    items = _by(_json(ok, "--by", "model"), "model")
    assert items["mystery-model"]["unpriced_requests"] == 1
    assert items["mystery-model"]["unpriced_input_tokens"] == 700
    assert items["claude-x"]["cost_usd"] == "5.00" and items["claude-x"]["unpriced_requests"] == 0


@pytest.mark.usefixtures("records")
@pytest.mark.parametrize(
    ("args", "projects"),
    [
        (["--since", "2025-01-02"], {"beta", "gamma"}),
        (["--until", "2025-01-01"], {"alpha"}),  # a plain date includes that whole day
        (["--until", "2025-01-02T00:00:00Z"], {"alpha"}),  # a time is exclusive
        (["--until", "2025-01-02"], {"alpha", "beta"}),
        (["--since", "2025-01-01T23:00:00", "--until", "2025-01-02T06:00:00+00:00"], None),
        (["--project", "beta"], {"beta"}),
        (["--project", "nobody"], set()),
        (["--since", "2026-01-01"], set()),
    ],
)
def test_filters(ok, args, projects):
    items = _by(_json(ok, *args), "project")
    if projects is None:  # one record of alpha (23:59:59) and one of beta (00:00)
        assert {p: i["requests"] for p, i in items.items()} == {"alpha": 1, "beta": 1}
        assert items["alpha"]["cost_usd"] == "0.000000000003"
    else:
        assert set(items) == projects


@pytest.mark.usefixtures("records")
def test_json_flag_is_the_same_as_format_json(ok):
    assert (
        ok("usage", "--json", "--by", "day").stdout
        == ok("usage", "--format", "json", "--by", "day").stdout
    )


@pytest.mark.usefixtures("records")
def test_csv_has_the_json_fields(ok):
    out = ok("usage", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == list(ALPHA)
    by_project = {r["project"]: r for r in rows}
    assert by_project["alpha"] == {k: str(v) for k, v in ALPHA.items()}
    assert by_project["beta"]["cost_usd"] == "5.00"
    assert by_project["beta"]["unpriced_requests"] == "1"


@pytest.mark.usefixtures("records")
def test_table_shows_unpriced_usage_as_such_and_a_total(ok):
    lines = ok("usage").stdout.splitlines()
    assert lines[0].split()[:3] == ["PROJECT", "REQUESTS", "INPUT"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert "$0.001234567893" in rows["alpha"]
    assert "$5.00" in rows["beta"] and "1 req, 700 in / 70 out tok" in rows["beta"]
    assert "$5.001234567893" in rows["TOTAL"]
    assert "3,810" in rows["TOTAL"]  # 1010 + 2700 + 100 input tokens


@pytest.mark.usefixtures("records")
def test_a_group_without_any_priced_request_has_no_cost_in_json_and_csv(ok):
    items = _by(_json(ok, "--by", "model"), "model")
    assert items["mystery-model"]["cost_usd"] is None  # never "0.00"
    assert items["mystery-model"]["unpriced_requests"] == items["mystery-model"]["requests"]
    assert items["llama"]["cost_usd"] == "0.00"  # priced at zero: a real $0
    out = ok("usage", "--format", "csv", "--by", "model").stdout
    rows = {r["model"]: r for r in csv.DictReader(io.StringIO(out))}
    assert rows["mystery-model"]["cost_usd"] == "unpriced"
    assert rows["llama"]["cost_usd"] == "0.00"


@pytest.mark.usefixtures("records")
def test_table_says_when_a_group_mixes_priced_and_unpriced_usage(ok):
    rows = {line.split()[0]: line for line in ok("usage").stdout.splitlines()[1:]}
    assert "$5.00 + unpriced" in rows["beta"]
    assert "+ unpriced" not in rows["alpha"]


@pytest.mark.usefixtures("records")
def test_table_never_shows_fully_unpriced_usage_as_zero_dollars(ok):
    lines = ok("usage", "--by", "model").stdout.splitlines()
    mystery = next(line for line in lines if line.startswith("mystery-model"))
    assert "unpriced" in mystery and "$0" not in mystery


def test_empty_reports(ok):
    assert json.loads(ok("usage", "--json").stdout) == []
    assert ok("usage", "--format", "csv", "--by", "day").stdout.splitlines() == [
        ",".join(["day", *list(ALPHA)[1:]])
    ]
    empty = ok("usage")
    assert empty.stdout == "" and "No usage" in empty.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--by", "week"], "Invalid value for '--by'"),
        (["--since", "last tuesday"], "is not a date"),
        (["--until", "2025-02-30"], "is not a date"),
        (["--format", "xml"], "Invalid value for '--format'"),
        (["--since", "2025-01-02", "--until", "2025-01-01"], "--since must be before --until"),
    ],
)
def test_bad_options_fail_in_one_line(tk, one_line_error, args, fragment):
    one_line_error(tk("usage", *args), fragment)


def test_a_database_not_at_head_is_migrated_then_reported(ok, db_url):
    """The quick read leaves an older schema to the full path, which migrates it (building
    the rollups from the records) and reports as always."""
    from oldschema import at_revision
    from sqlalchemy import text

    from addon.store.db import make_engine
    from addon.store.head import file_head

    engine = make_engine(db_url)
    with at_revision(engine, "0007") as conn:
        conn.execute(
            text(
                "INSERT INTO usage_records (request_id, created_at, project, provider, endpoint,"
                " input_tokens, cached_input_tokens, cache_write_tokens, output_tokens,"
                " reasoning_tokens, cost_picousd, streamed, estimated, extras_json, tags)"
                " VALUES ('old', CURRENT_TIMESTAMP, 'alpha', 'openai', '/v1/chat/completions',"
                " 3, 0, 0, 2, 0, 7000000, false, false, '{}', '')"
            )
        )
    (row,) = _json(ok)
    assert (row["project"], row["requests"], row["input_tokens"], row["cost_usd"]) == (
        "alpha",
        1,
        3,
        "0.000007",
    )
    with engine.connect() as conn:
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    engine.dispose()
    assert [v[0] for v in versions] == [file_head()]
