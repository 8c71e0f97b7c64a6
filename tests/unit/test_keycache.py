"""The in-memory key snapshot: refresh, single lookups, the refresh thread, and failures."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from addon import keys
from addon.keycache import KeyCache
from addon.store import keys_repo, prices_repo, realkeys_repo
from addon.store.db import open_store
from addon.store.models import AuditEvent, VirtualKey
from addon.vault import Vault

VAULT = Vault(Fernet.generate_key())


@pytest.fixture
def engine(migrated_db_url: str) -> Iterator[Engine]:
    e = open_store(migrated_db_url)
    yield e
    e.dispose()


@pytest.fixture
def cache(engine: Engine) -> Iterator[KeyCache]:
    c = KeyCache(engine, interval_s=0.05)
    yield c
    c.stop()


def create_key(engine: Engine, project: str = "proj", **policy: object) -> tuple[str, str]:
    with Session(engine) as s:
        row, full = keys_repo.create_key(
            session=s,
            project=project,
            policy=keys_repo.KeyPolicy(**policy),  # type: ignore[arg-type]
            actor="t",
        )
        return row.id, full


def revoke(engine: Engine, key_id: str) -> None:
    with Session(engine) as s:
        keys_repo.revoke_key(session=s, key_id=key_id, actor="t", reason="test")


def add_real(engine: Engine, provider: str, label: str, **kw: object) -> int:
    with Session(engine) as s:
        row = realkeys_repo.add_real_key(
            session=s,
            vault=VAULT,
            provider=provider,
            label=label,
            secret=kw.get("secret", f"sk-{label}-0123456789"),  # type: ignore[arg-type]
            env_ref=None,
            base_url=kw.get("base_url"),  # type: ignore[arg-type]
            actor="t",
        )
        assert row.id is not None
        return row.id


def set_price(engine: Engine, model: str) -> None:
    with Session(engine) as s:
        prices_repo.set_override(
            session=s, model=model, prices={"input": "1", "output": "2"}, actor="t"
        )


def insert_key_row(engine: Engine, key_id: str) -> None:
    """A key written straight into the table, without the audit event the CLI writes."""
    with Session(engine) as s:
        s.add(VirtualKey(id=key_id, project="p", secret_hash="0" * 64))
        s.commit()


def revoke_event(engine: Engine, key_id: str, action: str = "key.revoked") -> None:
    """Only the audit event of a change (the row itself changed by other means)."""
    with Session(engine) as s:
        s.add(AuditEvent(actor="t", action=action, target=key_id))
        s.commit()


def wait_for(cond: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def test_a_new_cache_is_empty_until_refreshed(engine: Engine, cache: KeyCache) -> None:
    create_key(engine)
    assert cache.keys == {} and cache.real_keys == {}
    cache.refresh()
    assert len(cache.keys) == 1


def test_refresh_copies_each_keys_policy(engine: Engine, cache: KeyCache) -> None:
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    key_id, full = create_key(
        engine,
        project="Project A",
        expires_at=expires,
        allowed_providers=("openai", "anthropic"),
        allowed_models=("gpt-4o*",),
        budget_picousd=5_000_000_000_000,
        budget_period="monthly",
        rpm=60,
        tpm=10_000,
        max_parallel=4,
    )
    cache.refresh()
    info = cache.keys[key_id]
    assert (info.id, info.project, info.revoked) == (key_id, "Project A", False)
    assert info.secret_hash == keys.hash_key(full)
    assert info.expires_at == expires
    assert info.allowed_providers == ("openai", "anthropic")
    assert info.allowed_models == ("gpt-4o*",)
    assert (info.budget_picousd, info.budget_period) == (5_000_000_000_000, "monthly")
    assert (info.rpm, info.tpm, info.max_parallel) == (60, 10_000, 4)


def test_refresh_picks_up_new_and_revoked_keys(engine: Engine, cache: KeyCache) -> None:
    first, _ = create_key(engine)
    cache.refresh()
    second, _ = create_key(engine)
    revoke(engine, first)
    assert cache.keys[first].revoked is False  # a snapshot: unchanged until refreshed
    cache.refresh()
    assert cache.keys[first].revoked is True
    assert second in cache.keys and cache.keys[second].revoked is False


def test_refresh_groups_real_keys_by_provider_in_insertion_order(
    engine: Engine, cache: KeyCache
) -> None:
    a = add_real(engine, "openai", "zeta", base_url="http://127.0.0.1:9/v1")
    b = add_real(engine, "anthropic", "main")
    c = add_real(engine, "openai", "alpha")
    cache.refresh()
    assert [k.id for k in cache.real_keys["openai"]] == [a, c]
    assert [k.id for k in cache.real_keys["anthropic"]] == [b]
    zeta = cache.real_keys["openai"][0]
    assert (zeta.label, zeta.base_url, zeta.status, zeta.auth_failures) == (
        "zeta",
        "http://127.0.0.1:9/v1",
        "healthy",
        0,
    )
    assert zeta.ciphertext is not None and VAULT.decrypt(zeta.ciphertext) == "sk-zeta-0123456789"


def test_refresh_sees_removed_real_keys_and_persisted_health(
    engine: Engine, cache: KeyCache
) -> None:
    a = add_real(engine, "openai", "a")
    add_real(engine, "openai", "b")
    cache.refresh()
    until = datetime.now(UTC) + timedelta(seconds=30)
    with Session(engine) as s:
        realkeys_repo.remove_real_key(session=s, provider="openai", label="b", actor="t")
        realkeys_repo.record_health(
            session=s,
            key_id=a,
            status="cooling",
            cooldown_until=until,
            auth_failures=1,
            last_error="upstream 401",
        )
    cache.refresh()
    (only,) = cache.real_keys["openai"]
    assert (only.id, only.status, only.cooldown_until, only.auth_failures) == (
        a,
        "cooling",
        until,
        1,
    )


def test_a_provider_without_real_keys_disappears_from_the_snapshot(
    engine: Engine, cache: KeyCache
) -> None:
    add_real(engine, "groq", "only")
    cache.refresh()
    with Session(engine) as s:
        realkeys_repo.remove_real_key(session=s, provider="groq", label="only", actor="t")
    cache.refresh()
    assert "groq" not in cache.real_keys


def test_load_one_finds_a_key_created_after_the_last_refresh(
    engine: Engine, cache: KeyCache
) -> None:
    old, _ = create_key(engine)
    cache.refresh()
    new, _ = create_key(engine)
    info = cache.load_one(new)
    assert info is not None and info.id == new
    assert set(cache.keys) == {old, new}  # added to the snapshot, the rest kept


def test_load_one_of_an_unknown_id_is_none(engine: Engine, cache: KeyCache) -> None:
    assert cache.load_one("nosuchkey0") is None
    assert cache.keys == {}


def test_load_one_sees_a_revocation(engine: Engine, cache: KeyCache) -> None:
    key_id, _ = create_key(engine)
    revoke(engine, key_id)
    info = cache.load_one(key_id)
    assert info is not None and info.revoked


def test_prices_and_providers_are_reread_only_when_they_changed(
    engine: Engine, cache: KeyCache
) -> None:
    seen: list[object] = []
    cache.on_refresh = lambda s: seen.append(s.exec(text("SELECT 1")).one()[0])
    cache.refresh(force=True)
    cache.refresh()  # nothing changed: nothing re-read
    assert seen == [1]
    key_id, _ = create_key(engine)
    revoke(engine, key_id)
    cache.refresh()  # a key changed: that key re-read, prices not
    assert seen == [1] and cache.keys[key_id].revoked
    set_price(engine, "gpt-x")
    cache.refresh()
    assert seen == [1, 1]


def test_the_thread_refreshes_on_its_interval(engine: Engine, cache: KeyCache) -> None:
    first, _ = create_key(engine)
    cache.start()  # refreshes once before returning
    assert first in cache.keys
    second, _ = create_key(engine)
    revoke(engine, first)
    add_real(engine, "openai", "main")
    wait_for(
        lambda: second in cache.keys and cache.keys[first].revoked and "openai" in cache.real_keys
    )


def test_stop_ends_the_refreshes(engine: Engine, cache: KeyCache) -> None:
    cache.start()
    thread = cache._thread
    assert thread is not None and thread.is_alive()
    cache.stop()
    assert not thread.is_alive()  # joined: nothing refreshes any more
    key_id, _ = create_key(engine)
    assert key_id not in cache.keys


def test_a_failing_refresh_keeps_the_last_snapshot(engine: Engine, cache: KeyCache) -> None:
    create_key(engine)
    cache.refresh()
    before = cache.keys
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE virtual_keys RENAME TO virtual_keys_away"))
    try:
        with pytest.raises(SQLAlchemyError):
            cache.refresh(force=True)
        assert cache.keys is before
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE virtual_keys_away RENAME TO virtual_keys"))


def test_a_failing_price_reload_keeps_the_last_snapshot(engine: Engine, cache: KeyCache) -> None:
    key_id, _ = create_key(engine)
    cache.refresh()
    revoke(engine, key_id)
    set_price(engine, "gpt-x")

    def broken(session: Session) -> None:
        raise ValueError("bad override")

    cache.on_refresh = broken
    with pytest.raises(ValueError):
        cache.refresh()
    assert cache.keys[key_id].revoked is False  # nothing half-applied


def test_a_failed_refresh_is_retried_by_the_next_one(engine: Engine, cache: KeyCache) -> None:
    key_id, _ = create_key(engine)
    cache.refresh()
    revoke(engine, key_id)
    set_price(engine, "gpt-x")
    failures = [ValueError("connection dropped")]

    def flaky(session: Session) -> None:
        if failures:
            raise failures.pop()

    cache.on_refresh = flaky
    with pytest.raises(ValueError):
        cache.refresh()
    cache.refresh()  # nothing new happened since: the failed changes are applied now
    assert cache.keys[key_id].revoked


def test_a_virtual_key_row_that_cannot_be_read_is_skipped_and_logged(
    engine: Engine, cache: KeyCache, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="addon.keycache")
    good, _ = create_key(engine)
    bad, _ = create_key(engine)
    cache.refresh()
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE virtual_keys SET metadata_json = '{not json' WHERE id = :k"), {"k": bad}
        )
    with Session(engine) as s:  # an audit event for it, as a newer gateway's change would write
        keys_repo.update_key(session=s, key_id=good, changes={"rpm": 5}, actor="t")
    revoke_event(engine, bad)
    cache.refresh()
    assert cache.keys[good].rpm == 5
    assert bad not in cache.keys  # refused, not kept in its last readable state
    assert f"virtual key {bad} cannot be read" in caplog.text
    cache.refresh(force=True)  # a full reload skips it the same way
    assert good in cache.keys and bad not in cache.keys
    assert cache.load_one(bad) is None


def test_a_real_key_row_that_cannot_be_read_is_skipped(engine: Engine, cache: KeyCache) -> None:
    add_real(engine, "openai", "good")
    add_real(engine, "openai", "bad")
    with engine.begin() as conn:
        conn.execute(text("UPDATE real_keys SET model_map_json = '[1' WHERE label = 'bad'"))
    cache.refresh()
    assert [k.label for k in cache.real_keys["openai"]] == ["good"]


def test_health_writes_reread_real_keys_only(engine: Engine, cache: KeyCache) -> None:
    a = add_real(engine, "openai", "a")
    cache.refresh()
    insert_key_row(engine, "sneakedin0")  # no audit event: only a full reload would see it
    with Session(engine) as s:
        realkeys_repo.record_health(
            session=s,
            key_id=a,
            status="cooling",
            cooldown_until=None,
            auth_failures=0,
            last_error="429",
        )
    cache.refresh()
    assert cache.real_keys["openai"][0].status == "cooling"
    assert "sneakedin0" not in cache.keys  # the virtual keys were not reloaded


def test_a_key_change_rereads_only_that_key(engine: Engine, cache: KeyCache) -> None:
    key_id, _ = create_key(engine)
    cache.refresh()
    insert_key_row(engine, "sneakedin0")
    revoke(engine, key_id)
    cache.refresh()
    assert cache.keys[key_id].revoked and "sneakedin0" not in cache.keys


def test_a_full_reload_comes_round_as_a_safety_net(engine: Engine) -> None:
    cache = KeyCache(engine, full_every_s=0.0)
    cache.refresh()
    insert_key_row(engine, "sneakedin0")
    cache.refresh()
    assert "sneakedin0" in cache.keys


def test_an_event_that_commits_after_a_higher_one_is_not_missed(
    engine: Engine, cache: KeyCache
) -> None:
    """PostgreSQL hands out ids at insert: a slower transaction commits a lower id later."""
    key_id, _ = create_key(engine)
    cache.refresh()
    with Session(engine) as s:
        top = s.exec(select(func.max(AuditEvent.id))).one() or 0
        s.add(AuditEvent(id=top + 10, actor="t", action="key.updated", target=key_id))
        s.commit()
    cache.refresh()
    insert_key_row(engine, "latecomer")
    with Session(engine) as s:
        s.add(AuditEvent(id=top + 5, actor="t", action="key.created", target="latecomer"))
        s.commit()
    cache.refresh()
    assert "latecomer" in cache.keys


def test_a_miss_is_remembered_and_a_creation_still_shows(engine: Engine, cache: KeyCache) -> None:
    cache.refresh()
    assert cache.load_one("nosuchkey0") is None
    insert_key_row(engine, "nosuchkey0")
    assert cache.load_one("nosuchkey0") is None  # the miss is remembered: no query
    revoke_event(engine, "nosuchkey0", action="key.created")
    cache.refresh()
    assert "nosuchkey0" in cache.keys


def test_the_thread_survives_failures_and_recovers(
    engine: Engine, cache: KeyCache, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="addon.keycache")
    key_id, _ = create_key(engine)
    cache.start()
    with engine.begin() as conn:  # every tick reads audit_events (the change fingerprint)
        conn.execute(text("ALTER TABLE audit_events RENAME TO audit_events_away"))
    try:
        wait_for(lambda: "refresh failed" in caplog.text)
        assert key_id in cache.keys and not cache.keys[key_id].revoked  # still serving
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE audit_events_away RENAME TO audit_events"))
    revoke(engine, key_id)
    wait_for(lambda: cache.keys[key_id].revoked)
    wait_for(lambda: "works again" in caplog.text)
    assert caplog.text.count("refresh failed") == 1  # logged once per outage, not per tick


def test_stop_leaves_a_hung_refresh_behind_after_its_timeout(
    engine: Engine, cache: KeyCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database that hangs mid-refresh must not hold up the gateway's exit."""
    cache.start()
    entered, release = threading.Event(), threading.Event()

    def hang(force: bool = False) -> None:
        entered.set()
        release.wait(30)

    monkeypatch.setattr(cache, "refresh", hang)
    try:
        assert entered.wait(10)  # the thread's next round is now stuck
        stopper = threading.Thread(target=cache.stop, kwargs={"timeout_s": 0.05})
        stopper.start()
        stopper.join(2)  # the default timeout is 5 s
        assert not stopper.is_alive()  # returned although the refresh still hangs
        assert cache._thread is not None and cache._thread.is_alive()
    finally:
        release.set()
