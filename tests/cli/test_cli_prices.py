import json

import pytest
from sqlmodel import Session

from addon.pricing.table import PriceBook
from addon.store import prices_repo


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
