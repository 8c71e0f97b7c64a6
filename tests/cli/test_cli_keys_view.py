from datetime import UTC, datetime, timedelta

from addon.store.models import VirtualKey
from cli.keys_view import budget_text, key_json, key_with_secret_json, status

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def _key(**fields) -> VirtualKey:
    return VirtualKey(id="abcdefghij", project="p", secret_hash="f" * 64, **fields)


def test_status():
    assert status(_key(), NOW) == "active"
    assert status(_key(expires_at=NOW + timedelta(seconds=1)), NOW) == "active"
    assert status(_key(expires_at=NOW), NOW) == "expired"
    assert status(_key(revoked_at=NOW, expires_at=NOW - timedelta(days=1)), NOW) == "revoked"


def test_json_never_holds_the_hash_and_only_the_secret_variant_holds_the_key():
    row = _key(budget_picousd=2_500_000_000_000, allowed_models="a*,b", metadata_json='{"x": 1}')
    data = key_json(row)
    assert "f" * 64 not in str(data) and "key" not in data
    assert data["budget_usd"] == "2.50" and data["models"] == ["a*", "b"]
    assert data["metadata"] == {"x": 1} and data["providers"] == []
    with_secret = key_with_secret_json(row, "tk-abcdefghij-" + "0" * 40)
    assert list(with_secret)[:3] == ["id", "key", "project"]
    assert {k: v for k, v in with_secret.items() if k != "key"} == data


def test_budget_text():
    assert budget_text(_key()) == "-"
    assert budget_text(_key(budget_picousd=10**12, budget_period="daily")) == "$1.00 daily"
