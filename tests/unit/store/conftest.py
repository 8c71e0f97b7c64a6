"""Store test fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import Session

from addon.store.db import open_store


@pytest.fixture
def session(migrated_db_url: str) -> Iterator[Session]:
    """A session on a freshly migrated database (SQLite and PostgreSQL)."""
    engine = open_store(migrated_db_url)
    with Session(engine) as s:
        yield s
    engine.dispose()
