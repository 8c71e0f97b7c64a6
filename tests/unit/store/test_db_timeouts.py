"""Database connections never wait without bound: connect and statement timeouts."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from addon.store.db import PG_STATEMENT_TIMEOUT_MS, SQLITE_BUSY_S, make_engine


@pytest.mark.postgres
def test_postgresql_connections_carry_a_statement_timeout_and_keep_the_urls_options(
    postgres_url: str,
) -> None:
    engine = make_engine(postgres_url)  # the URL sets search_path through `options`
    try:
        with engine.connect() as conn:
            shown = conn.execute(text("SHOW statement_timeout")).scalar()
            assert shown == f"{PG_STATEMENT_TIMEOUT_MS // 1000}s"
            assert str(conn.execute(text("SHOW search_path")).scalar()).startswith("tk_")
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_statement_timeout_in_the_url_wins(postgres_url: str) -> None:
    engine = make_engine(postgres_url.replace("options=", "options=-cstatement_timeout%3D1234%20"))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "1234ms"
    finally:
        engine.dispose()


def test_sqlite_waits_for_a_lock_only_so_long(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == SQLITE_BUSY_S * 1000
    finally:
        engine.dispose()
