import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlmodel import Session, select

from addon.pricing.table import PriceBook
from addon.store import prices_repo
from addon.store.models import UsageRecord
from addon.store.usage_repo import insert_records


def _list(ok, *args) -> list[dict]:
    return json.loads(ok("prices", "list", "--json", *args).stdout)


def test_list_shows_the_bundled_table_marked_as_bundled(ok):
    items = _list(ok)
    assert len(items) == len(PriceBook.bundled().entries())
    assert {i["source"] for i in items} == {"bundled"}
    gpt = next(i for i in items if i["model"] == "gpt-4o")
    assert gpt["provider"] == "openai"
    assert set(gpt["prices"]) >= {"input", "output"}
    assert all(isinstance(v, str) for v in gpt["prices"].values())


def test_set_stores_an_override_that_wins_and_is_marked(ok, store):
    result = ok(
        "prices",
        "set",
        "gpt-4o",
        "--input",
        "2.000001",
        "--output",
        "8",
        "--cached-input",
        "0.5",
        "--cache-write-5m",
        "3",
        "--cache-write-1h",
        "4.5",
        "--reasoning",
        "9",
        actor="pat",
    )
    assert "gpt-4o" in result.stderr
    expected = {
        "input": "2.000001",
        "output": "8",
        "cached_input": "0.5",
        "cache_write_5m": "3",
        "cache_write_1h": "4.5",
        "reasoning": "9",
    }
    with Session(store) as s:
        assert prices_repo.list_overrides(session=s) == {"gpt-4o": expected}
    (gpt,) = [i for i in _list(ok) if i["model"] == "gpt-4o"]
    assert gpt["source"] == "override" and gpt["prices"] == expected
    assert _list(ok, "--overrides") == [gpt]
    (event,) = json.loads(ok("audit", "--json").stdout)
    assert (event["action"], event["actor"], event["target"]) == ("price.set", "pat", "gpt-4o")


def test_list_filters_and_table(ok):
    ok("prices", "set", "acme/custom-1", "--input", "1", "--output", "2")
    table = ok("prices", "list", "--model", "acme/*").stdout.splitlines()
    assert table[0].split()[:4] == ["MODEL", "PROVIDER", "INPUT", "OUTPUT"]
    assert table[1].split() == [
        "acme/custom-1",
        "acme",
        "1",
        "2",
        "-",
        "-",
        "-",
        "-",
        "-",
        "override",
    ]
    assert [i["model"] for i in _list(ok, "--provider", "acme")] == ["acme/custom-1"]
    assert all(i["provider"] == "anthropic" for i in _list(ok, "--provider", "anthropic"))
    empty = ok("prices", "list", "--model", "no-such-*")
    assert empty.stdout == "" and "No prices match" in empty.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["m", "--input", "1"], "Missing option '--output'"),
        (["m", "--input", "-1", "--output", "1"], "must not be negative"),
        (["m", "--input", "abc", "--output", "1"], "not a USD amount"),
        (["m", "--input", "1", "--output", "NaN"], "not a USD amount"),
        ([" ", "--input", "1", "--output", "1"], "MODEL must not be empty"),
    ],
)
def test_bad_set_fails_in_one_line_and_stores_nothing(tk, one_line_error, store, args, fragment):
    one_line_error(tk("prices", "set", *args), fragment)
    with Session(store) as s:
        assert prices_repo.list_overrides(session=s) == {}


def test_import_sets_every_price(ok, tmp_path, store):
    path = tmp_path / "prices.json"
    data = {
        "team/model-a": {"input": "0.1", "output": "0.2"},
        "model-b": {"input": "3", "output": "15", "cached_input": "0.3", "batch_input": "1.5"},
    }
    path.write_text(json.dumps(data))
    result = ok("prices", "import", str(path))
    assert "Imported 2" in result.stderr
    with Session(store) as s:
        assert prices_repo.list_overrides(session=s) == data
    listed = {i["model"]: i for i in _list(ok, "--overrides")}
    assert listed["model-b"]["prices"]["batch_input"] == "1.5"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "is not valid JSON"),
        ("[]", "must hold a non-empty JSON object"),
        ("{}", "must hold a non-empty JSON object"),
        ('{"m": {"input": "1"}}', "m: no output rate"),
        ('{"m": {"input": 1.5, "output": "2"}}', "must be a decimal string"),
        ('{"m": {"input": "-1", "output": "2"}}', "m: input: amount '-1' must not be negative"),
        ('{"m": {"inptu": "1", "output": "2"}}', "unknown price field 'inptu'"),
        ('{"m": "cheap"}', "expected an object"),
        ('{"ok": {"input": "1", "output": "2"}, "bad": {"input": "x", "output": "1"}}', "bad:"),
    ],
)
def test_bad_import_fails_in_one_line_and_stores_nothing(
    tk, one_line_error, tmp_path, store, content, fragment
):
    path = tmp_path / "prices.json"
    path.write_text(content)
    one_line_error(tk("prices", "import", str(path)), fragment)
    with Session(store) as s:
        assert prices_repo.list_overrides(session=s) == {}


def test_import_of_a_missing_file_is_a_one_line_error(tk, one_line_error, tmp_path):
    one_line_error(tk("prices", "import", str(tmp_path / "nope.json")), "does not exist")


def test_unset_removes_the_override_and_is_audited(ok, store):
    ok("prices", "set", "gpt-4o", "--input", "9", "--output", "9")
    ok("prices", "set", "acme/custom-1", "--input", "1", "--output", "2")
    result = ok("prices", "unset", "gpt-4o", actor="pat")
    assert "bundled price applies again" in result.stderr and result.stdout == ""
    with Session(store) as s:
        assert list(prices_repo.list_overrides(session=s)) == ["acme/custom-1"]
    (gpt,) = [i for i in _list(ok) if i["model"] == "gpt-4o"]
    assert gpt["source"] == "bundled"
    event = json.loads(ok("audit", "--json").stdout)[-1]
    assert (event["action"], event["actor"], event["target"]) == ("price.unset", "pat", "gpt-4o")
    assert event["details"] == {"input": "9", "output": "9"}  # what was removed


def test_unset_of_a_model_without_a_bundled_price_says_so(ok):
    ok("prices", "set", "acme/custom-1", "--input", "1", "--output", "2")
    result = ok("prices", "unset", " acme/custom-1 ")
    assert "no bundled price" in result.stderr
    assert _list(ok, "--overrides") == []


@pytest.mark.parametrize(
    ("model", "fragment"),
    [
        ("gpt-4o", "no price override for 'gpt-4o'"),
        ("ACME/Custom-1", "(did you mean 'acme/custom-1'?)"),
        (" ", "MODEL must not be empty"),
    ],
)
def test_bad_unset_fails_in_one_line_and_keeps_the_overrides(
    ok, tk, one_line_error, store, model, fragment
):
    ok("prices", "set", "acme/custom-1", "--input", "1", "--output", "2")
    result = tk("prices", "unset", model)
    one_line_error(result, fragment)
    assert result.exit_code == 1
    with Session(store) as s:
        assert list(prices_repo.list_overrides(session=s)) == ["acme/custom-1"]
    actions = [e["action"] for e in json.loads(ok("audit", "--json").stdout)]
    assert actions == ["price.set"]


def test_unset_then_reprice_returns_stored_costs_to_the_bundled_price(ok, store):
    with Session(store) as s:
        insert_records(
            session=s,
            records=[
                UsageRecord(
                    request_id="r1",
                    created_at=datetime(2025, 1, 1, tzinfo=UTC),
                    virtual_key_id="k1",
                    provider="openai",
                    model="gpt-4o",
                    input_tokens=4_000,
                    output_tokens=300,
                    cost_picousd=1,
                )
            ],
        )
    ok("prices", "set", "gpt-4o", "--input", "1", "--output", "1")
    ok("usage", "reprice")
    assert _cost(store, "r1") == 4_300 * 10**6  # 4,300 tokens x $1/M
    ok("prices", "unset", "gpt-4o")
    ok("usage", "reprice")
    (bundled,) = [i["prices"] for i in _list(ok) if i["model"] == "gpt-4o"]
    usd = (4_000 * Decimal(bundled["input"]) + 300 * Decimal(bundled["output"])) / 10**6
    assert _cost(store, "r1") == usd * 10**12


def _cost(store, request_id: str) -> int | None:
    with Session(store) as s:
        row = s.exec(select(UsageRecord).where(UsageRecord.request_id == request_id)).one()
        return row.cost_picousd
