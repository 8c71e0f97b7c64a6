import json
import stat
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlmodel import Session

from addon.store import realkeys_repo
from addon.vault import Vault, load_master_key
from cli.providers import PROVIDER_NAMES

SECRET = "sk-proj-Zq8sXecretValue0123456789wxyz"
OTHER = "sk-ant-api03-AnotherSecret9876"


@pytest.fixture
def env_key(monkeypatch):
    monkeypatch.setenv("OPENAI_TEST_KEY", SECRET)
    return "OPENAI_TEST_KEY"


def _rows(store) -> list[dict]:
    with store.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text("SELECT * FROM real_keys"))]


def test_add_from_env_stores_ciphertext_not_the_secret(ok, store, env_key, tk_home, db_url):
    result = ok("providers", "add", "openai", "--api-key-env", env_key)
    assert SECRET not in result.output and "…wxyz" in result.stderr
    (row,) = _rows(store)
    assert (row["provider"], row["label"], row["env_ref"]) == ("openai", "default", None)
    assert SECRET not in " ".join(str(v) for v in row.values())
    master_key = tk_home / "master.key"
    assert stat.S_IMODE(master_key.stat().st_mode) == 0o600
    assert Vault(load_master_key(master_key)).decrypt(row["ciphertext"]) == SECRET
    store.dispose()  # SQLite: checkpoint the WAL so the file holds everything
    if db_url.startswith("sqlite:///"):
        db_path = db_url.removeprefix("sqlite:///")
        files = [p for p in tk_home.parent.rglob("*") if p.is_file()]
        assert any(str(p) == db_path for p in files)
        for path in files:
            assert SECRET.encode() not in path.read_bytes(), path


def test_add_from_stdin(ok, store):
    ok("providers", "add", "anthropic", "--api-key-stdin", "--label", "team", input=OTHER + "\n")
    with Session(store) as s:
        (row,) = realkeys_repo.list_real_keys(session=s)
    assert (row.provider, row.label, row.last4) == ("anthropic", "team", "9876")
    assert row.ciphertext and OTHER not in row.ciphertext


def test_list_shows_only_the_last_four_characters(ok, env_key):
    ok(
        "providers",
        "add",
        "openai",
        "--api-key-env",
        env_key,
        "--base-url",
        "https://eu.example.com/v1",
    )
    ok("providers", "add", "anthropic", "--api-key-stdin", input=OTHER)
    table = ok("providers", "list").stdout
    assert "…wxyz" in table and "…9876" in table and "https://eu.example.com/v1" in table
    data = json.loads(ok("providers", "list", "--json").stdout)
    by_provider = {d["provider"]: d for d in data}
    assert by_provider["openai"]["key_hint"] == "…wxyz"
    assert by_provider["openai"]["stored_as"] == "encrypted"
    assert by_provider["openai"]["base_url"] == "https://eu.example.com/v1"
    assert by_provider["anthropic"]["status"] == "healthy"
    everything = table + json.dumps(data) + ok("audit").stdout + ok("audit", "--json").stdout
    for secret in (SECRET, OTHER):
        assert secret not in everything
        assert secret[:-4] not in everything


def test_list_shows_health(ok, store, env_key):
    ok("providers", "add", "openai", "--api-key-env", env_key)
    until = datetime(2030, 1, 2, 3, 4, tzinfo=UTC)
    with Session(store) as s:
        (row,) = realkeys_repo.list_real_keys(session=s)
        assert row.id is not None
        realkeys_repo.record_health(
            session=s,
            key_id=row.id,
            status="cooling",
            cooldown_until=until,
            auth_failures=2,
            last_error="429",
        )
    (item,) = json.loads(ok("providers", "list", "--json").stdout)
    assert item["status"] == "cooling" and item["cooldown_until"] == "2030-01-02T03:04:00Z"
    assert item["consecutive_auth_failures"] == 2
    line = ok("providers", "list").stdout.splitlines()[1]
    assert "cooling" in line and "2030-01-02 03:04" in line


def test_env_reference_stores_only_the_variable_name(ok, store, env_key):
    result = ok("providers", "add", "openai", "--api-key-env", env_key, "--store-env-reference")
    (row,) = _rows(store)
    assert row["env_ref"] == env_key and row["ciphertext"] is None
    assert SECRET not in " ".join(str(v) for v in row.values()) and SECRET not in result.output
    (item,) = json.loads(ok("providers", "list", "--json").stdout)
    assert item["stored_as"] == "env_ref" and item["key_hint"] == f"${env_key}"


def test_env_reference_to_an_unset_variable_warns(ok, store):
    result = ok(
        "providers", "add", "groq", "--api-key-env", "GROQ_UNSET_X", "--store-env-reference"
    )
    assert "GROQ_UNSET_X is not set here" in result.stderr
    assert _rows(store)[0]["env_ref"] == "GROQ_UNSET_X"


@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_or_empty_env_var_is_a_one_line_error(
    tk, one_line_error, store, monkeypatch, value
):
    if value is None:
        monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    else:
        monkeypatch.setenv("NO_SUCH_KEY_VAR", value)
    result = tk("providers", "add", "openai", "--api-key-env", "NO_SUCH_KEY_VAR")
    one_line_error(result, "NO_SUCH_KEY_VAR is not set or empty")
    assert _rows(store) == []


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["nope", "--api-key-env", "K"], "unknown provider 'nope'"),
        (["openai"], "exactly one of"),
        (["openai", "--api-key-env", "K", "--api-key-stdin"], "exactly one of"),
        (["openai", "--api-key-stdin", "--store-env-reference"], "needs --api-key-env"),
        (["openai", "--api-key-env", "1BAD-NAME"], "not an environment variable name"),
        (["openai", "--api-key-env", "K", "--label", " "], "--label must not be empty"),
        (["openai", "--api-key-env", "K", "--base-url", "ftp://x.example"], "http:// or https://"),
        (["openai", "--api-key-env", "K", "--base-url", "https://"], "http:// or https://"),
        (["openai", "--api-key-env", "K", "--base-url", "localhost:8000"], "http:// or https://"),
        (["openai", "--api-key-env", "K", "--base-url", "http://h:99999"], "not a valid URL"),
        (["openai", "--api-key-env", "K", "--base-url", "https://u:p@h.example"], "credentials"),
        (["openai", "--api-key-env", "K", "--base-url", "https://h.example/#x"], "fragment"),
    ],
)
def test_bad_add_arguments_fail_in_one_line(tk, one_line_error, store, monkeypatch, args, fragment):
    monkeypatch.setenv("K", SECRET)
    result = tk("providers", "add", *args, input="")
    line = one_line_error(result, fragment)
    assert SECRET not in line
    assert _rows(store) == []


def test_empty_stdin_is_an_error(tk, one_line_error):
    one_line_error(tk("providers", "add", "openai", "--api-key-stdin", input="\n"), "no API key")


def test_duplicate_label_is_a_one_line_error(ok, tk, one_line_error, env_key):
    ok("providers", "add", "openai", "--api-key-env", env_key)
    one_line_error(
        tk("providers", "add", "openai", "--api-key-env", env_key), "already has a key labelled"
    )
    ok("providers", "add", "openai", "--api-key-env", env_key, "--label", "second")


def test_invalid_master_key_is_a_one_line_error(tk, one_line_error, env_key, monkeypatch, store):
    monkeypatch.setenv("TOLLKEEPER_MASTER_KEY", "not-a-fernet-key")
    result = tk("providers", "add", "openai", "--api-key-env", env_key)
    line = one_line_error(result, "master key is not a valid Fernet key")
    assert "not-a-fernet-key" not in line
    assert _rows(store) == []


def test_master_key_from_the_environment_is_used_and_no_file_is_created(
    ok, tk, one_line_error, env_key, monkeypatch, tk_home, store
):
    master = Fernet.generate_key()
    monkeypatch.setenv("TOLLKEEPER_MASTER_KEY", master.decode())
    ok("providers", "add", "openai", "--api-key-env", env_key)
    assert not (tk_home / "master.key").exists()
    assert Vault(master).decrypt(_rows(store)[0]["ciphertext"]) == SECRET
    # a different master key would leave the pool undecryptable: refused
    monkeypatch.setenv("TOLLKEEPER_MASTER_KEY", Fernet.generate_key().decode())
    result = tk("providers", "add", "openai", "--api-key-env", env_key, "--label", "b")
    one_line_error(result, "does not decrypt the keys already stored")


def test_remove_deletes_the_key_and_is_audited(ok, tk, one_line_error, env_key, store):
    ok("providers", "add", "openai", "--api-key-env", env_key, "--label", "a")
    ok("providers", "remove", "openai", "--label", "a", actor="carol")
    assert _rows(store) == []
    one_line_error(tk("providers", "remove", "openai", "--label", "a"), "no openai key labelled")
    one_line_error(tk("providers", "remove", "openai"), "Missing option '--label'")
    events = json.loads(ok("audit", "--json").stdout)
    assert [(e["action"], e["actor"], e["target"]) for e in events] == [
        ("real_key.added", "tester", "openai/a"),
        ("real_key.removed", "carol", "openai/a"),
    ]


def test_list_when_empty_explains_on_stderr(ok):
    result = ok("providers", "list")
    assert result.stdout == "" and "providers add" in result.stderr
    assert json.loads(ok("providers", "list", "--json").stdout) == []


def test_known_provider_names():
    assert {"openai", "anthropic", "gemini", "azure", "mistral", "groq"} <= PROVIDER_NAMES
    assert {"deepseek", "xai", "openrouter", "together", "fireworks"} <= PROVIDER_NAMES


def test_a_tollkeeper_virtual_key_is_refused_as_a_real_key(ok, tk, one_line_error, store):
    created = json.loads(ok("keys", "create", "--project", "p", "--json").stdout)
    result = tk("providers", "add", "openai", "--api-key-stdin", input=created["key"] + "\n")
    line = one_line_error(result, "tollkeeper virtual key")
    assert created["key"] not in line
    assert _rows(store) == []


def test_a_virtual_key_in_the_referenced_variable_is_refused(tk, one_line_error, monkeypatch):
    monkeypatch.setenv("TK_AS_REAL", "tk-abcdefghij-" + "0" * 40)
    args = ("providers", "add", "openai", "--api-key-env", "TK_AS_REAL", "--store-env-reference")
    one_line_error(tk(*args), "tollkeeper virtual key")


def test_list_marks_keys_the_master_key_cannot_decrypt(ok, env_key, monkeypatch):
    ok("providers", "add", "openai", "--api-key-env", env_key)
    ok("providers", "add", "groq", "--api-key-env", env_key, "--store-env-reference")
    monkeypatch.setenv("TOLLKEEPER_MASTER_KEY", Fernet.generate_key().decode())
    items = {d["provider"]: d for d in json.loads(ok("providers", "list", "--json").stdout)}
    assert items["openai"]["readable"] is False and items["groq"]["readable"] is True
    result = ok("providers", "list")
    assert "unreadable" in result.stdout.splitlines()[1 + sorted(items).index("openai")]
    assert "do not decrypt" in result.stderr
