import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlmodel import Session

from addon import keys
from addon.store import keys_repo
from addon.store.audit_repo import list_events
from addon.store.models import VirtualKey


def _create(ok, *args):
    return json.loads(ok("keys", "create", "--project", "search", "--json", *args).stdout)


def _row_text(store, key_id: str) -> str:
    """Every column of the key's row, as stored, joined into one string."""
    with store.connect() as conn:
        row = conn.execute(text("SELECT * FROM virtual_keys WHERE id = :id"), {"id": key_id}).one()
    return " ".join(str(v) for v in row)


def test_create_json_prints_one_object_with_the_key_and_stores_only_its_hash(ok, store):
    result = ok("keys", "create", "--project", "search", "--json")
    data = json.loads(result.stdout)  # stdout holds exactly one JSON document
    assert data["project"] == "search"
    assert keys.parse_key(data["key"]) == data["id"]
    assert data["status"] == "active"
    assert data["expires_at"] is None and data["budget_usd"] is None
    assert data["created_by"] == "tester"
    assert "not shown again" in result.stderr and data["key"] not in result.stderr
    stored = _row_text(store, data["id"])
    secret = data["key"].rsplit("-", 1)[1]
    assert keys.hash_key(data["key"]) in stored
    assert data["key"] not in stored and secret not in stored
    with Session(store) as s:
        assert all(secret not in e.details_json for e in list_events(session=s))


def test_create_without_json_prints_only_the_key_on_stdout(ok):
    result = ok("keys", "create", "--project", "search")
    key = result.stdout.strip()
    assert result.stdout == key + "\n"
    key_id = keys.parse_key(key)
    assert key_id in result.stderr and "not shown again" in result.stderr


def test_create_with_a_full_policy(ok):
    before = datetime.now(UTC)
    data = _create(
        ok,
        "--expires-in",
        "30d",
        "--budget",
        "12.5",
        "--budget-period",
        "monthly",
        "--rpm",
        "60",
        "--tpm",
        "100000",
        "--max-parallel",
        "4",
        "--models",
        "gpt-4o*, claude-*",
        "--providers",
        "openai,anthropic",
        "--metadata",
        '{"team": "search", "cost_center": 42}',
    )
    expires = datetime.fromisoformat(data["expires_at"])
    assert before + timedelta(days=30) - timedelta(seconds=5) <= expires
    assert expires <= datetime.now(UTC) + timedelta(days=30)
    assert data["budget_usd"] == "12.50" and data["budget_period"] == "monthly"
    assert (data["rpm"], data["tpm"], data["max_parallel"]) == (60, 100000, 4)
    assert data["models"] == ["gpt-4o*", "claude-*"]
    assert data["providers"] == ["openai", "anthropic"]
    assert data["metadata"] == {"team": "search", "cost_center": 42}


def test_allow_unmetered_is_off_by_default_and_set_and_cleared_by_create_and_update(ok):
    assert _create(ok)["allow_unmetered"] is False
    data = _create(ok, "--budget", "1", "--allow-unmetered")
    assert data["allow_unmetered"] is True
    ok("keys", "update", data["id"], "--no-allow-unmetered")
    assert json.loads(ok("keys", "show", data["id"], "--json").stdout)["allow_unmetered"] is False


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--expires-in", "3x"], "'3x' is not a duration"),
        (["--expires-in", "99999999d"], "too long"),
        (["--budget", "-5"], "must not be negative"),
        (["--budget", "1.0000000000001"], "more than 12 decimals"),
        (["--budget", "NaN"], "not a USD amount"),
        (["--rpm", "0"], "not a positive integer"),
        (["--providers", "openai,nope"], "unknown provider 'nope'"),
        (["--metadata", "{not json"], "not valid JSON"),
        (["--metadata", "[1]"], "must be a JSON object"),
        (["--budget-period", "weekly"], "--budget-period"),
    ],
)
def test_bad_create_options_fail_in_one_line_and_store_nothing(
    tk, store, one_line_error, args, fragment
):
    result = tk("keys", "create", "--project", "p", *args)
    one_line_error(result, fragment)
    with Session(store) as s:
        assert keys_repo.list_keys(session=s, include_inactive=True) == []


def test_missing_project_is_a_one_line_usage_error(tk, one_line_error):
    result = tk("keys", "create")
    one_line_error(result, "Missing option '--project'", "tollkeeper keys create --help")
    assert result.exit_code == 2


def test_empty_project_is_refused(tk, one_line_error):
    one_line_error(tk("keys", "create", "--project", "  "), "project must not be empty")


def test_list_and_show_never_print_a_secret_or_its_hash(ok):
    created = [_create(ok) for _ in range(2)]
    outputs = [
        ok("keys", "list").stdout,
        ok("keys", "list", "--all", "--json").stdout,
        ok("keys", "show", created[0]["id"]).stdout,
        ok("keys", "show", created[0]["id"], "--json").stdout,
    ]
    for data in created:
        assert data["id"] in outputs[0] and data["id"] in outputs[1]
        secret = data["key"].rsplit("-", 1)[1]
        for out in outputs:
            assert secret not in out and keys.hash_key(data["key"]) not in out
    listed = json.loads(outputs[1])
    assert all("key" not in item and "secret_hash" not in item for item in listed)
    shown = json.loads(outputs[3])
    assert {k: v for k, v in shown.items() if k in listed[0]} == listed[0]
    assert shown["spent_usd"] == "0.00" and shown["in_flight"] == 0


def test_list_table_shows_status_budget_and_expiry(ok):
    data = _create(ok, "--budget", "5", "--expires-in", "12h")
    lines = ok("keys", "list").stdout.splitlines()
    assert lines[0].split() == ["ID", "PROJECT", "CREATED", "EXPIRES", "STATUS", "BUDGET"]
    assert data["id"] in lines[1] and "active" in lines[1] and "$5.00 total" in lines[1]


def test_list_hides_revoked_and_expired_keys_unless_all(ok, store):
    live, gone = _create(ok), _create(ok)
    ok("keys", "revoke", gone["id"])
    with Session(store) as s:
        past = datetime.now(UTC) - timedelta(minutes=1)
        expired, _ = keys_repo.create_key(
            session=s, project="old", policy=keys_repo.KeyPolicy(expires_at=past), actor="a"
        )
        expired_id = expired.id
    default = ok("keys", "list", "--json").stdout
    assert [k["id"] for k in json.loads(default)] == [live["id"]]
    everything = {
        k["id"]: k["status"] for k in json.loads(ok("keys", "list", "--all", "--json").stdout)
    }
    assert everything == {live["id"]: "active", gone["id"]: "revoked", expired_id: "expired"}
    table = ok("keys", "list", "--all").stdout
    assert "revoked" in table and "expired" in table


def test_list_filters_by_project_and_says_when_empty(ok):
    _create(ok)
    assert json.loads(ok("keys", "list", "--project", "other", "--json").stdout) == []
    empty = ok("keys", "list", "--project", "other")
    assert empty.stdout == "" and "No active keys" in empty.stderr


def test_show_details(ok):
    data = _create(ok, "--budget", "1.25", "--budget-period", "daily", "--models", "gpt-*")
    out = ok("keys", "show", data["id"]).stdout
    assert "id:" in out and data["id"] in out
    assert "$1.25 daily" in out and "gpt-*" in out and "providers:" in out


def test_unknown_key_id_is_a_one_line_error_everywhere(tk, one_line_error):
    for command in (["show"], ["revoke"], ["rotate"], ["update", "--rpm", "5"]):
        one_line_error(tk("keys", *command, "nosuchkey0"), "no virtual key with id 'nosuchkey0'")


def test_revoke_records_actor_and_reason_and_cannot_be_repeated(ok, tk, one_line_error, store):
    data = _create(ok)
    result = ok("keys", "revoke", data["id"], "--reason", "leaked in CI logs", actor="bob")
    assert result.stdout == "" and data["id"] in result.stderr
    shown = json.loads(ok("keys", "show", data["id"], "--json").stdout)
    assert shown["status"] == "revoked" and shown["revoked_by"] == "bob"
    assert shown["revoke_reason"] == "leaked in CI logs"
    one_line_error(tk("keys", "revoke", data["id"]), "already revoked")
    with Session(store) as s:
        row = s.get(VirtualKey, data["id"])
        assert row is not None and row.revoked_by == "bob"
        assert [e.action for e in list_events(session=s)] == ["key.created", "key.revoked"]


def test_revoke_json_prints_the_revoked_key(ok):
    data = _create(ok)
    revoked = json.loads(ok("keys", "revoke", data["id"], "--json").stdout)
    assert revoked["id"] == data["id"] and revoked["status"] == "revoked"
    assert "key" not in revoked


def test_rotate_gives_a_new_secret_for_the_same_id(ok, tk, one_line_error, store):
    data = _create(ok, "--rpm", "10")
    rotated = json.loads(ok("keys", "rotate", data["id"], "--json").stdout)
    assert rotated["id"] == data["id"] and rotated["project"] == "search"
    assert rotated["key"] != data["key"] and keys.parse_key(rotated["key"]) == data["id"]
    assert rotated["rpm"] == 10
    with Session(store) as s:
        row = s.get(VirtualKey, data["id"])
        assert row is not None
        assert keys.matches(rotated["key"], row.secret_hash)
        assert not keys.matches(data["key"], row.secret_hash)
    plain = ok("keys", "rotate", data["id"])
    assert keys.parse_key(plain.stdout.strip()) == data["id"]
    assert "not shown again" in plain.stderr
    ok("keys", "revoke", data["id"])
    one_line_error(tk("keys", "rotate", data["id"]), "revoked")


def test_update_changes_only_what_is_given(ok):
    data = _create(ok, "--budget", "10", "--rpm", "5", "--expires-in", "1d", "--models", "a*")
    updated = json.loads(
        ok("keys", "update", data["id"], "--budget", "20", "--tpm", "999", "--json").stdout
    )
    assert updated["budget_usd"] == "20.00" and updated["tpm"] == 999
    assert updated["rpm"] == 5 and updated["models"] == ["a*"]
    assert updated["expires_at"] == data["expires_at"]


def test_update_can_clear_limits_lists_expiry_and_budget(ok):
    data = _create(ok, "--budget", "10", "--rpm", "5", "--expires-in", "1d", "--models", "a*")
    args = ["--no-budget", "--no-expiry", "--rpm", "none", "--models", ""]
    updated = json.loads(ok("keys", "update", data["id"], *args, "--json").stdout)
    assert updated["budget_usd"] is None and updated["expires_at"] is None
    assert updated["rpm"] is None and updated["models"] == []


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ([], "nothing to change"),
        (["--no-expiry", "--expires-in", "1d"], "contradict"),
        (["--no-budget", "--budget", "1"], "contradict"),
        (["--rpm", "lots"], "not a positive integer or 'none'"),
    ],
)
def test_bad_updates_fail_in_one_line(ok, tk, one_line_error, args, fragment):
    data = _create(ok)
    one_line_error(tk("keys", "update", data["id"], *args), fragment)


def test_revoked_keys_cannot_be_updated(ok, tk, one_line_error):
    data = _create(ok)
    ok("keys", "revoke", data["id"])
    one_line_error(tk("keys", "update", data["id"], "--rpm", "3"), "revoked")


LIST_FORMS = [
    (),
    ("--all",),
    ("--json",),
    ("--all", "--json"),
    ("--project", "b"),
    ("--all", "--project", "b", "--json"),
    ("--project", "none"),
]


def test_list_answers_from_the_quick_read_exactly_as_from_the_store(ok, store, monkeypatch):
    """Every status and every policy field: the quick read (addon.store.quick) prints the
    same bytes as the full path, and does not open the store to do it."""
    from keyrows import make_keys

    from addon.store import db, quick

    make_keys(store)
    ok("keys", "create", "--project", "b", "--budget", "0.000001", "--metadata", '{"é": 1}')

    def no_store(url):
        raise AssertionError("the quick read should have answered")

    with monkeypatch.context() as m:
        m.setattr(db, "open_store", no_store)
        fast = {args: ok("keys", "list", *args) for args in LIST_FORMS}
    monkeypatch.setattr(quick, "list_keys", lambda url, include_inactive=False: None)
    for args, result in fast.items():
        full = ok("keys", "list", *args)
        assert (result.stdout, result.stderr) == (full.stdout, full.stderr), args
    statuses = {k["status"] for k in json.loads(fast[("--all", "--json")].stdout)}
    assert statuses == {"active", "expired", "revoked"}


def test_list_on_a_database_not_at_head_takes_the_full_path_and_migrates(ok, db_url):
    from oldschema import at_revision

    from addon.store.db import make_engine
    from addon.store.head import file_head

    engine = make_engine(db_url)
    with at_revision(engine, "0007") as conn:
        conn.execute(
            text(
                "INSERT INTO virtual_keys (id, project, secret_hash, created_at, created_by,"
                " updated_at, allowed_providers, allowed_models, budget_period, metadata_json)"
                " VALUES ('abcdefghij', 'p', 'h', CURRENT_TIMESTAMP, 'a', CURRENT_TIMESTAMP,"
                " '', '', 'total', '{}')"
            )
        )
    try:
        listed = json.loads(ok("keys", "list", "--json").stdout)
        assert [(k["id"], k["status"]) for k in listed] == [("abcdefghij", "active")]
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        assert [v[0] for v in versions] == [file_head()]
    finally:
        engine.dispose()


def test_list_on_an_empty_database_file_migrates_it(run_cli, sqlite_url):
    import sqlite3

    from addon.store.head import file_head

    path = sqlite_url.removeprefix("sqlite:///")
    sqlite3.connect(path).close()  # a file without tables: no version table
    result = run_cli("--db", sqlite_url, "keys", "list")
    assert result.exit_code == 0 and result.stdout == "", result.stderr
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (file_head(),)
        ]
