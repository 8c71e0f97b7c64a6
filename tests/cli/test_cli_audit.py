import json
from datetime import UTC, datetime

from sqlmodel import Session

from addon.store.models import AuditEvent

PROVIDER_SECRET = "sk-live-auditTestSecret-123456789"


def _events(ok) -> list[dict]:
    return json.loads(ok("audit", "--json").stdout)


def test_every_change_is_listed_with_its_actor_and_never_a_secret(ok, monkeypatch, tmp_path):
    monkeypatch.setenv("PROV_KEY", PROVIDER_SECRET)
    created = json.loads(ok("keys", "create", "--project", "p", "--json", actor="alice").stdout)
    key_id = created["id"]
    ok("keys", "update", key_id, "--rpm", "9", actor="bob")
    rotated = json.loads(ok("keys", "rotate", key_id, "--json", actor="bob").stdout)
    ok("keys", "revoke", key_id, "--reason", "done", actor="carol")
    ok("providers", "add", "openai", "--api-key-env", "PROV_KEY", actor="dave")
    ok("providers", "remove", "openai", "--label", "default", actor="dave")
    ok("prices", "set", "my-model", "--input", "1", "--output", "2", actor="erin")
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"other-model": {"input": "0.5", "output": "1.5"}}))
    ok("prices", "import", str(prices), actor="erin")

    events = _events(ok)
    assert [(e["action"], e["actor"], e["target"]) for e in events] == [
        ("key.created", "alice", key_id),
        ("key.updated", "bob", key_id),
        ("key.rotated", "bob", key_id),
        ("key.revoked", "carol", key_id),
        ("real_key.added", "dave", "openai/default"),
        ("real_key.removed", "dave", "openai/default"),
        ("price.set", "erin", "my-model"),
        ("price.set", "erin", "other-model"),
    ]
    assert events[1]["details"] == {"rpm": 9}
    assert events[3]["details"] == {"reason": "done"}
    assert all(e["at"].endswith("Z") for e in events)

    table = ok("audit").stdout
    assert table.splitlines()[0].split()[:4] == ["TIME", "(UTC)", "ACTOR", "ACTION"]
    assert len(table.splitlines()) == 1 + len(events)
    everything = table + json.dumps(events)
    for secret in (created["key"], rotated["key"], PROVIDER_SECRET):
        assert secret not in everything
    for key in (created["key"], rotated["key"]):
        assert key.rsplit("-", 1)[1] not in everything


def test_default_actor_is_the_login_name(ok, monkeypatch):
    monkeypatch.setenv("LOGNAME", "ada-os-user")
    ok("keys", "create", "--project", "p", actor=None)
    monkeypatch.setenv("TOLLKEEPER_ACTOR", "ci-bot")
    ok("keys", "create", "--project", "p", actor=None)
    assert [e["actor"] for e in _events(ok)] == ["ada-os-user", "ci-bot"]


def test_empty_actor_is_refused(tk, one_line_error):
    one_line_error(tk("--actor", " ", "keys", "list", actor=None), "--actor must not be empty")


def test_since_filters_by_time(ok, store):
    with Session(store) as s:
        for day in (1, 5, 9):
            s.add(
                AuditEvent(
                    at=datetime(2025, 3, day, 12, tzinfo=UTC),
                    actor="a",
                    action="key.created",
                    target=f"k{day}",
                )
            )
        s.commit()
    assert [e["target"] for e in _events(ok)] == ["k1", "k5", "k9"]
    since = json.loads(ok("audit", "--since", "2025-03-05", "--json").stdout)
    assert [e["target"] for e in since] == ["k5", "k9"]
    later = json.loads(ok("audit", "--since", "2025-03-05T12:00:01Z", "--json").stdout)
    assert [e["target"] for e in later] == ["k9"]


def test_details_named_like_credentials_are_redacted(ok, store):
    with Session(store) as s:
        details = {"api_key": "sk-should-not-show", "key_id": "abc", "note": "fine"}
        s.add(AuditEvent(actor="x", action="custom", target="t", details_json=json.dumps(details)))
        s.commit()
    (event,) = _events(ok)
    assert event["details"] == {"api_key": "[redacted]", "key_id": "abc", "note": "fine"}
    assert "sk-should-not-show" not in ok("audit").stdout


def test_empty_log_and_bad_since(ok, tk, one_line_error):
    result = ok("audit")
    assert result.stdout == "" and "No audit events" in result.stderr
    assert _events(ok) == []
    one_line_error(tk("audit", "--since", "soon"), "is not a date")
