"""A database as an older release left it: migrated up to a given revision, not to head."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from sqlalchemy.engine import Connection, Engine

from addon.store.db import _alembic_config


@contextmanager
def at_revision(engine: Engine, revision: str) -> Iterator[Connection]:
    """A transaction on ``engine`` whose schema has just been migrated up to ``revision``;
    what the block writes is the old release's data (committed when the block ends)."""
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        yield conn
