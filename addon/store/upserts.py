"""Upserts that add: the statement every counter and rollup of the store is kept with.

``INSERT ... ON CONFLICT (keys) DO UPDATE SET a = a + excluded.a`` adds to a row that exists
and creates it otherwise, in one statement, on SQLite and PostgreSQL alike; concurrent
writers never lose an increment.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite


@cache
def upsert_adding(dialect: str, table: Table, keys: tuple[str, ...], adds: tuple[str, ...]) -> Any:
    """``INSERT INTO table ... ON CONFLICT (keys) DO UPDATE SET a = a + excluded.a`` for each
    of ``adds``, its values given at execution (one row, or many at once). Built once per
    shape: building it (the ``excluded`` alias above all) cost more than running it."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table)
    return stmt.on_conflict_do_update(
        index_elements=list(keys), set_={k: table.c[k] + stmt.excluded[k] for k in adds}
    )
