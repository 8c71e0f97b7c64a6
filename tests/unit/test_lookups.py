"""Looking up keys missing from the snapshot: once, then from the miss cache; under a flood,
from the next refresh instead of the database."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from addon.keycache import KeyCache, KeyInfo
from addon.lookups import Budget, KeyLookups, LookupUnavailable
from addon.store import keys_repo
from addon.store.db import make_engine, open_store


class CountingCache(KeyCache):
    """A real key cache that counts its database look-ups."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine, interval_s=0.05)
        self.queries: list[str] = []

    def load_one(self, key_id: str) -> KeyInfo | None:
        self.queries.append(key_id)
        return super().load_one(key_id)


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    e = open_store(sqlite_url)
    yield e
    e.dispose()


@pytest.fixture
def cache(engine: Engine) -> Iterator[CountingCache]:
    c = CountingCache(engine)
    yield c
    c.stop()


def new_key(engine: Engine) -> str:
    with Session(engine) as s:
        row, _ = keys_repo.create_key(
            session=s, project="p", policy=keys_repo.KeyPolicy(), actor="t"
        )
        return row.id


def test_a_key_in_the_snapshot_needs_no_query(engine: Engine, cache: CountingCache) -> None:
    key_id = new_key(engine)
    cache.refresh()
    info = asyncio.run(KeyLookups(cache).find(key_id))
    assert info is not None and info.id == key_id and cache.queries == []


def test_an_unknown_key_is_queried_once_then_answered_from_the_misses(
    cache: CountingCache,
) -> None:
    cache.refresh()
    lookups = KeyLookups(cache)

    async def twice() -> list[KeyInfo | None]:
        return [await lookups.find("nosuchkey0"), await lookups.find("nosuchkey0")]

    assert asyncio.run(twice()) == [None, None]
    assert cache.queries == ["nosuchkey0"]
    lookups.stop()


def test_a_key_created_after_the_refresh_is_found(engine: Engine, cache: CountingCache) -> None:
    cache.refresh()
    key_id = new_key(engine)
    info = asyncio.run(KeyLookups(cache).find(key_id))
    assert info is not None and info.id == key_id and key_id in cache.keys


def test_under_a_flood_lookups_wait_for_the_refresh_instead_of_querying(
    engine: Engine, cache: CountingCache
) -> None:
    cache.start()
    lookups = KeyLookups(cache, max_pending=0)  # as if the executor were already busy
    key_id = new_key(engine)  # not in the snapshot yet when the request arrives

    async def both() -> tuple[KeyInfo | None, KeyInfo | None]:
        return await lookups.find(key_id), await lookups.find("nosuchkey0")

    found, unknown = asyncio.run(both())
    assert found is not None and found.id == key_id  # brought by the refresh
    assert unknown is None and "nosuchkey0" in cache.misses
    assert cache.queries == []
    lookups.stop()


def test_beyond_the_query_budget_lookups_wait_for_the_refresh(
    engine: Engine, cache: CountingCache
) -> None:
    cache.start()
    lookups = KeyLookups(cache, per_second=2)

    async def flood() -> list[KeyInfo | None]:
        return [await lookups.find(f"flood{i:05d}") for i in range(4)]

    assert asyncio.run(flood()) == [None] * 4
    assert cache.queries == ["flood00000", "flood00001"]  # then the budget was spent
    lookups.stop()


def test_the_budget_refills_with_time() -> None:
    now = [0.0]
    budget = Budget(2, clock=lambda: now[0])
    assert [budget.take() for _ in range(3)] == [True, True, False]
    now[0] += 0.5
    assert [budget.take() for _ in range(2)] == [True, False]
    now[0] += 10
    assert [budget.take() for _ in range(3)] == [True, True, False]  # never above the rate


def test_a_lookup_the_database_cannot_answer_is_a_503() -> None:
    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none")
    lookups = KeyLookups(KeyCache(engine))
    with pytest.raises(LookupUnavailable) as exc:
        asyncio.run(lookups.find("abcdefghij"))
    assert exc.value.status == 503 and exc.value.retry_after_s
    lookups.stop()
    engine.dispose()
