from datetime import timedelta

import pytest
from sqlmodel import Session

from addon import keys
from addon.store import keys_repo
from addon.store.audit_repo import list_events
from addon.store.db import open_store
from addon.store.errors import Conflict, NotFound
from addon.store.models import utcnow


def test_create_stores_only_a_hash_and_returns_the_full_key_once(session):
    row, full = keys_repo.create_key(
        session=session, project="Project A", policy=keys_repo.KeyPolicy(), actor="alice"
    )
    assert keys.parse_key(full) == row.id
    assert row.secret_hash == keys.hash_key(full)
    assert full not in row.model_dump_json()
    assert [e.action for e in list_events(session=session)] == ["key.created"]


def test_revoke_hides_key_from_default_listing_and_is_audited(session):
    row, _ = keys_repo.create_key(
        session=session, project="p", policy=keys_repo.KeyPolicy(), actor="alice"
    )
    keys_repo.revoke_key(session=session, key_id=row.id, actor="bob", reason="leaked")
    assert keys_repo.list_keys(session=session) == []
    assert [k.id for k in keys_repo.list_keys(session=session, include_inactive=True)] == [row.id]
    with pytest.raises(Conflict):
        keys_repo.revoke_key(session=session, key_id=row.id, actor="bob", reason=None)
    last = list_events(session=session)[-1]
    assert (last.action, last.actor, last.target) == ("key.revoked", "bob", row.id)


def test_rotate_changes_secret_but_keeps_id(session):
    row, old = keys_repo.create_key(
        session=session, project="p", policy=keys_repo.KeyPolicy(), actor="a"
    )
    rotated, new = keys_repo.rotate_key(session=session, key_id=row.id, actor="a")
    assert rotated.id == row.id and new != old
    assert keys.matches(new, rotated.secret_hash) and not keys.matches(old, rotated.secret_hash)


def test_expired_keys_are_inactive(session):
    past = utcnow() - timedelta(seconds=1)
    keys_repo.create_key(
        session=session, project="p", policy=keys_repo.KeyPolicy(expires_at=past), actor="a"
    )
    assert keys_repo.list_keys(session=session) == []


def test_unknown_key_id_raises_not_found(session):
    with pytest.raises(NotFound):
        keys_repo.get_key(session=session, key_id="nosuchkey0")


def test_concurrent_revokes_of_one_key_give_exactly_one_success(db_url):
    import threading

    engine = open_store(db_url)
    try:
        for _ in range(5):
            with Session(engine) as s:
                row, _ = keys_repo.create_key(
                    session=s, project="race", policy=keys_repo.KeyPolicy(), actor="a"
                )
            barrier, outcomes = threading.Barrier(2), []

            def revoke(
                actor: str, key_id: str = row.id, barrier=barrier, outcomes=outcomes
            ) -> None:
                with Session(engine) as s:
                    barrier.wait()
                    try:
                        keys_repo.revoke_key(session=s, key_id=key_id, actor=actor, reason=None)
                        outcomes.append("ok")
                    except Conflict:
                        outcomes.append("conflict")

            threads = [threading.Thread(target=revoke, args=(n,)) for n in ("x", "y")]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(outcomes) == ["conflict", "ok"]
        with Session(engine) as s:
            revokes = [e for e in list_events(session=s) if e.action == "key.revoked"]
        assert len(revokes) == 5
    finally:
        engine.dispose()
