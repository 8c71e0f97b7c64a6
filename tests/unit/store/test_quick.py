"""The quick read of virtual keys: the same rows as the table gives, or None when unsure."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from keyrows import make_keys
from sqlalchemy import text
from sqlmodel import Session

from addon.store import keys_repo, quick
from addon.store.db import open_store


@pytest.fixture
def keyed(db_url: str) -> dict[str, str]:
    engine = open_store(db_url)
    try:
        return make_keys(engine)
    finally:
        engine.dispose()


def full_path(url: str, *, include_inactive: bool) -> list[list[str]]:
    engine = open_store(url)
    try:
        with Session(engine) as s:
            rows = keys_repo.list_keys(session=s, include_inactive=include_inactive)
            return [[repr(getattr(r, c)) for c in quick.COLUMNS] for r in rows]
    finally:
        engine.dispose()


@pytest.mark.parametrize("include_inactive", [True, False])
def test_the_records_are_the_tables_rows_value_for_value(
    db_url: str, keyed: dict[str, str], include_inactive: bool
) -> None:
    records = quick.list_keys(db_url, include_inactive=include_inactive)
    assert records is not None
    got = [[repr(getattr(r, c)) for c in quick.COLUMNS] for r in records]
    assert got == full_path(db_url, include_inactive=include_inactive)  # reprs: types, tz too
    ids = [r.id for r in records]
    if include_inactive:
        assert ids == [keyed["active"], keyed["full"], keyed["expired"], keyed["revoked"]]
    else:
        assert ids == [keyed["active"], keyed["full"]]
    assert all(r.created_at.tzinfo is not None for r in records)


def test_the_secrets_hash_is_not_read() -> None:
    assert "secret_hash" not in quick.COLUMNS


def test_an_empty_store_gives_no_records(db_url: str) -> None:
    open_store(db_url).dispose()
    assert quick.list_keys(db_url, include_inactive=True) == []


def test_a_missing_sqlite_file_is_left_to_the_full_path_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "none.db"
    assert quick.list_keys(f"sqlite:///{path}") is None
    assert not path.exists()


def test_a_database_without_a_version_table_is_left_to_the_full_path(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    assert quick.list_keys(f"sqlite:///{path}") is None


def test_a_database_not_at_head_is_left_to_the_full_path(db_url: str) -> None:
    engine = open_store(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    finally:
        engine.dispose()
    assert quick.list_keys(db_url) is None


def test_unclear_migration_files_are_left_to_the_full_path(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_store(sqlite_url).dispose()
    monkeypatch.setattr(quick, "file_head", lambda: None)
    assert quick.list_keys(sqlite_url) is None


def test_a_value_it_cannot_read_is_left_to_the_full_path(sqlite_url: str) -> None:
    engine = open_store(sqlite_url)
    try:
        make_keys(engine)
        with engine.begin() as conn:
            conn.execute(text("UPDATE virtual_keys SET created_at = 'soon'"))
    finally:
        engine.dispose()
    assert quick.list_keys(sqlite_url) is None


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://",
        "sqlite:///:memory:",
        "mysql+pymysql://u@127.0.0.1/x",
        "postgresql+psycopg2://u@127.0.0.1/x",
    ],
)
def test_other_url_forms_are_left_to_the_full_path(url: str) -> None:
    assert quick.list_keys(url) is None


def test_a_sqlite_url_with_a_query_is_left_to_the_full_path(sqlite_url: str) -> None:
    open_store(sqlite_url).dispose()
    assert quick.list_keys(sqlite_url) == []
    assert quick.list_keys(sqlite_url + "?timeout=3") is None


def test_an_unreachable_postgres_is_left_to_the_full_path() -> None:
    # nothing listens on this port (one of this project's test ports)
    assert quick.list_keys("postgresql+psycopg://u@127.0.0.1:47201/x") is None


def test_without_psycopg_postgres_is_left_to_the_full_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg raises ImportError
    assert quick.list_keys("postgresql+psycopg://u@127.0.0.1:47201/x") is None


def test_reading_imports_no_sqlalchemy(sqlite_url: str) -> None:
    open_store(sqlite_url).dispose()
    code = (
        "import sys; from addon.store import quick;"
        f"assert quick.list_keys({sqlite_url!r}) == [];"
        "print(sorted(m for m in sys.modules if m.startswith(('sqlalchemy', 'sqlmodel'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_fetch_runs_a_query_on_a_schema_at_head(db_url: str) -> None:
    open_store(db_url).dispose()
    marks = {"sqlite": "?", "postgresql": "%s"}
    rows = quick.fetch(db_url, lambda dialect: (f"SELECT {marks[dialect]} + 1", [41]))
    assert [tuple(r) for r in rows or []] == [(42,)]


def test_fetch_leaves_a_query_it_cannot_build_to_the_full_path(sqlite_url: str) -> None:
    open_store(sqlite_url).dispose()

    def unbuildable(dialect: str) -> tuple[str, list[object]]:
        raise ValueError(dialect)

    assert quick.fetch(sqlite_url, unbuildable) is None
