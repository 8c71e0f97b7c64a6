"""Real-key health across processes: what one gateway observed reaches another through the
database and the key cache, and an operator's ``enable`` reaches a gateway that saw the key
fail (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from sqlalchemy.engine import Engine
from sqlmodel import Session

from addon.keycache import KeyCache, RealKeyInfo
from addon.pool import Pool
from addon.providers.key_health import Answer
from addon.store import realkeys_repo
from addon.store.db import open_store
from addon.vault import Vault

REJECTED = Answer("key_rejected", "401 invalid_api_key")


@pytest.fixture
def engine(migrated_db_url: str) -> Iterator[Engine]:
    e = open_store(migrated_db_url)
    with Session(e) as s:
        realkeys_repo.add_real_key(
            session=s,
            vault=Vault(Fernet.generate_key()),
            provider="openai",
            label="main",
            secret="sk-proj-persist-0000000000000000000001",
            env_ref=None,
            base_url=None,
            actor="t",
        )
    yield e
    e.dispose()


def persist(engine: Engine, key: RealKeyInfo, pool: Pool) -> None:
    """What the writer does with a HealthEvent."""
    h = pool.health(key)
    with Session(engine) as s:
        realkeys_repo.record_health(
            session=s,
            key_id=key.id,
            status=h.status,
            cooldown_until=h.cooldown_until,
            auth_failures=h.auth_failures,
            last_error=h.last_error,
        )


def snapshot(engine: Engine) -> RealKeyInfo:
    cache = KeyCache(engine)
    cache.refresh(force=True)
    (key,) = cache.real_keys["openai"]
    return key


def test_a_rejection_seen_by_one_gateway_keeps_the_key_out_in_another(engine: Engine) -> None:
    first = Pool()
    key = snapshot(engine)
    first.report(key, REJECTED)
    persist(engine, key, first)
    stored = snapshot(engine)
    assert (stored.status, stored.auth_failures, stored.last_error) == (
        "cooling",
        1,
        "401 invalid_api_key",
    )
    second = Pool()  # another process, or this one after a restart
    assert second.pick((stored,), second.now()) is None
    assert second.health(stored).key_rejected
    assert first.health(stored) == first.health(key)  # its own write changes nothing for it


def test_enable_reaches_a_gateway_that_saw_the_key_fail(engine: Engine) -> None:
    pool = Pool()
    key = snapshot(engine)
    pool.report(key, REJECTED)
    persist(engine, key, pool)
    assert pool.pick((snapshot(engine),), pool.now()) is None
    with Session(engine) as s:
        realkeys_repo.enable_real_key(session=s, provider="openai", label="main", actor="op")
    enabled = snapshot(engine)
    assert pool.health(enabled).status == "healthy"
    assert pool.pick((enabled,), pool.now()) == enabled
