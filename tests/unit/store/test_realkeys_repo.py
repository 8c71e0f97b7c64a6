"""Real provider keys in the database: encrypted at rest, pools, removal, health, audit."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from addon.store import realkeys_repo
from addon.store.audit_repo import list_events
from addon.store.errors import Conflict, NotFound
from addon.store.models import RealKey
from addon.vault import Vault

SECRET = "sk-proj-REALSECRET-abcdefghijklmnop-WXYZ"


@pytest.fixture
def vault() -> Vault:
    return Vault(Fernet.generate_key())


def add(session: Session, vault: Vault, label: str = "main", **kw: object) -> RealKey:
    args: dict[str, object] = {
        "provider": "openai",
        "label": label,
        "secret": SECRET,
        "env_ref": None,
        "base_url": None,
        "actor": "alice",
    }
    args.update(kw)
    return realkeys_repo.add_real_key(session=session, vault=vault, **args)  # type: ignore[arg-type]


RAW = {
    "real_keys": text("SELECT * FROM real_keys"),
    "audit_events": text("SELECT * FROM audit_events"),
}


def raw_dump(session: Session, table: str) -> str:
    """Every column of every row, as the database holds them."""
    return repr(session.connection().execute(RAW[table]).all())


def test_a_secret_is_stored_encrypted_never_in_plain_text(session: Session, vault: Vault) -> None:
    row = add(session, vault, base_url="https://eu.api.openai.com/v1")
    assert row.ciphertext is not None and row.env_ref is None
    assert vault.decrypt(row.ciphertext) == SECRET
    assert row.last4 == "WXYZ"
    assert row.base_url == "https://eu.api.openai.com/v1"
    assert (row.status, row.consecutive_auth_failures) == ("healthy", 0)
    for table in ("real_keys", "audit_events"):
        dump = raw_dump(session, table)
        assert SECRET not in dump
        assert "REALSECRET" not in dump


def test_an_env_reference_stores_no_secret(session: Session, vault: Vault) -> None:
    row = add(session, vault, secret=None, env_ref="OPENAI_API_KEY")
    assert (row.ciphertext, row.env_ref, row.last4) == (None, "OPENAI_API_KEY", "$env")


@pytest.mark.parametrize(("secret", "env_ref"), [(None, None), (SECRET, "OPENAI_API_KEY")])
def test_exactly_one_of_secret_and_env_ref(
    session: Session, vault: Vault, secret: str | None, env_ref: str | None
) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        add(session, vault, secret=secret, env_ref=env_ref)
    assert realkeys_repo.list_real_keys(session=session) == []


def test_adding_is_audited_without_the_secret(session: Session, vault: Vault) -> None:
    add(session, vault, label="main")
    add(session, vault, label="spare", secret=None, env_ref="OPENAI_KEY_2")
    events = list_events(session=session)
    assert [(e.action, e.actor, e.target) for e in events] == [
        ("real_key.added", "alice", "openai/main"),
        ("real_key.added", "alice", "openai/spare"),
    ]
    assert '"stored_as": "encrypted"' in events[0].details_json
    assert '"stored_as": "env_ref"' in events[1].details_json
    assert all(SECRET not in e.details_json for e in events)


def test_a_duplicate_label_for_the_same_provider_is_a_conflict(
    session: Session, vault: Vault
) -> None:
    add(session, vault, label="main")
    with pytest.raises(Conflict, match="main"):
        add(session, vault, label="main", secret="sk-other-0000000000")
    assert [e.action for e in list_events(session=session)] == ["real_key.added"]  # not audited
    (only,) = realkeys_repo.list_real_keys(session=session)
    assert vault.decrypt(only.ciphertext or "") == SECRET  # the first key is untouched
    add(session, vault, label="second")  # and the session is still usable


def test_the_same_label_under_another_provider_is_fine(session: Session, vault: Vault) -> None:
    add(session, vault, provider="openai", label="main")
    add(session, vault, provider="anthropic", label="main")
    assert len(realkeys_repo.list_real_keys(session=session)) == 2


def test_list_is_sorted_and_filters_by_provider(session: Session, vault: Vault) -> None:
    add(session, vault, provider="openai", label="b")
    add(session, vault, provider="anthropic", label="z")
    add(session, vault, provider="openai", label="a")
    listed = [(k.provider, k.label) for k in realkeys_repo.list_real_keys(session=session)]
    assert listed == [("anthropic", "z"), ("openai", "a"), ("openai", "b")]
    only = realkeys_repo.list_real_keys(session=session, provider="openai")
    assert [k.label for k in only] == ["a", "b"]
    assert realkeys_repo.list_real_keys(session=session, provider="groq") == []


def test_remove_deletes_the_key_and_is_audited(session: Session, vault: Vault) -> None:
    add(session, vault, label="main")
    add(session, vault, label="spare")
    realkeys_repo.remove_real_key(session=session, provider="openai", label="main", actor="bob")
    assert [k.label for k in realkeys_repo.list_real_keys(session=session)] == ["spare"]
    last = list_events(session=session)[-1]
    assert (last.action, last.actor, last.target) == ("real_key.removed", "bob", "openai/main")
    add(session, vault, label="main")  # the label is free again


@pytest.mark.parametrize(("provider", "label"), [("openai", "nope"), ("anthropic", "main")])
def test_removing_an_unknown_key_is_not_found(
    session: Session, vault: Vault, provider: str, label: str
) -> None:
    add(session, vault, provider="openai", label="main")
    with pytest.raises(NotFound, match=label):
        realkeys_repo.remove_real_key(session=session, provider=provider, label=label, actor="b")
    assert len(realkeys_repo.list_real_keys(session=session)) == 1


def test_record_health_updates_the_stored_health(session: Session, vault: Vault) -> None:
    row = add(session, vault)
    assert row.id is not None
    before = row.updated_at
    until = datetime(2026, 3, 1, 12, 5, tzinfo=UTC)
    realkeys_repo.record_health(
        session=session,
        key_id=row.id,
        status="cooling",
        cooldown_until=until,
        auth_failures=2,
        last_error="upstream 401",
    )
    session.expire_all()
    stored = session.get(RealKey, row.id)
    assert stored is not None
    assert (stored.status, stored.cooldown_until) == ("cooling", until)
    assert (stored.consecutive_auth_failures, stored.last_error) == (2, "upstream 401")
    assert stored.updated_at >= before
    # health is not an admin change: no audit event
    assert [e.action for e in list_events(session=session)] == ["real_key.added"]


def test_record_health_back_to_healthy_clears_the_cooldown(session: Session, vault: Vault) -> None:
    row = add(session, vault)
    assert row.id is not None
    soon = datetime.now(UTC) + timedelta(minutes=5)
    realkeys_repo.record_health(
        session=session, key_id=row.id, status="cooling", cooldown_until=soon,
        auth_failures=1, last_error="upstream 429",
    )  # fmt: skip
    realkeys_repo.record_health(
        session=session, key_id=row.id, status="healthy", cooldown_until=None,
        auth_failures=0, last_error=None,
    )  # fmt: skip
    session.expire_all()
    stored = session.get(RealKey, row.id)
    assert stored is not None
    assert (stored.status, stored.cooldown_until, stored.consecutive_auth_failures) == (
        "healthy",
        None,
        0,
    )
    assert stored.last_error is None


def test_record_health_of_a_removed_key_does_nothing(session: Session, vault: Vault) -> None:
    row = add(session, vault)
    assert row.id is not None
    realkeys_repo.remove_real_key(session=session, provider="openai", label="main", actor="b")
    realkeys_repo.record_health(
        session=session, key_id=row.id, status="disabled", cooldown_until=None,
        auth_failures=3, last_error="upstream 401",
    )  # fmt: skip
    assert realkeys_repo.list_real_keys(session=session) == []


def test_health_seen_before_an_enable_does_not_undo_it(session: Session, vault: Vault) -> None:
    """The writer records a rejection up to a flush interval after the gateway saw it; an
    operator's enable in between is newer and stays. A later observation is written."""
    row = add(session, vault)
    assert row.id is not None
    seen = datetime.now(UTC)
    realkeys_repo.enable_real_key(session=session, provider="openai", label="main", actor="op")
    rejected = {"status": "cooling", "auth_failures": 1, "last_error": "upstream 401"}
    realkeys_repo.record_health(
        session=session, key_id=row.id, cooldown_until=None, observed_at=seen, **rejected
    )
    session.expire_all()
    stored = session.get(RealKey, row.id)
    assert stored is not None and stored.status == "healthy"
    later = datetime.now(UTC) + timedelta(seconds=1)
    realkeys_repo.record_health(
        session=session, key_id=row.id, cooldown_until=None, observed_at=later, **rejected
    )
    session.expire_all()
    stored = session.get(RealKey, row.id)
    assert stored is not None and (stored.status, stored.consecutive_auth_failures) == (
        "cooling",
        1,
    )


def _write_late_rejection(bind: Engine | Connection, key_id: int, seen: datetime) -> None:
    """The writer thread persisting a rejection it observed at ``seen``."""
    with Session(bind=bind) as s:
        realkeys_repo.record_health(
            session=s,
            key_id=key_id,
            status="cooling",
            cooldown_until=None,
            auth_failures=1,
            last_error="upstream 401",
            observed_at=seen,
        )


def _enable(engine: Engine) -> None:
    """The operator's ``providers enable``, from another connection."""
    with Session(engine) as s:
        realkeys_repo.enable_real_key(session=s, provider="openai", label="main", actor="op")


@contextlib.contextmanager
def _after_first_select(
    engine: Engine, conn: Connection, then: Callable[[], None]
) -> Iterator[list[str]]:
    """Run ``then`` right after the first SELECT ``conn`` executes; yields the statements
    it ran after (empty when ``conn`` read nothing)."""
    done: list[str] = []

    def hook(on: Any, cursor: Any, statement: str, *args: Any) -> None:
        if on is conn and statement.lstrip().upper().startswith("SELECT") and not done:
            done.append(statement)
            then()

    event.listen(engine, "after_cursor_execute", hook)
    try:
        yield done
    finally:
        event.remove(engine, "after_cursor_execute", hook)


def _key(session: Session) -> tuple[int, Engine]:
    row = add(session, Vault(Fernet.generate_key()))
    engine = session.get_bind()
    assert row.id is not None and isinstance(engine, Engine)
    return row.id, engine


def _status(session: Session, key_id: int) -> str:
    session.expire_all()
    stored = session.get(RealKey, key_id)
    assert stored is not None
    return stored.status


def test_an_enable_committed_while_a_late_rejection_is_written_stays(session: Session) -> None:
    """The writer thread records a rejection while an operator's ``enable`` (another
    process) commits. Whatever the writer reads of the row before it writes, an enable
    committed right after that read is newer news and must survive the write."""
    key_id, engine = _key(session)
    seen = datetime.now(UTC)
    with (
        engine.connect() as writer,
        _after_first_select(engine, writer, lambda: _enable(engine)) as read,
    ):
        _write_late_rejection(writer, key_id, seen)
    if not read:  # the write read nothing first: the enable comes after it
        _enable(engine)
    assert _status(session, key_id) == "healthy"


def test_a_rejection_committed_while_an_enable_runs_does_not_keep_the_key_out(
    session: Session,
) -> None:
    """The operator's ``enable`` reads the key healthy; the gateway's writer then commits a
    rejection it saw before the enable; the enable writes. The enable is the later word:
    the key serves (it used to stay cooling: only the columns the enable saw change were
    written)."""
    key_id, engine = _key(session)
    seen = datetime.now(UTC)
    late = threading.Thread(target=_write_late_rejection, args=(engine, key_id, seen))

    def reject() -> None:
        late.start()
        late.join(timeout=1)  # PostgreSQL: it waits on the enable's row lock

    with (
        engine.connect() as operator,
        _after_first_select(engine, operator, reject) as read,
        Session(bind=operator) as s,
    ):
        realkeys_repo.enable_real_key(session=s, provider="openai", label="main", actor="op")
    assert read
    late.join(timeout=10)
    assert _status(session, key_id) == "healthy"
