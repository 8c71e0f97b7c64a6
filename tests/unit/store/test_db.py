"""Engines and migrations: empty databases, repeated and concurrent migrations, bad URLs."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from addon.store import db as db_module
from addon.store import keys_repo
from addon.store.db import StoreUnavailable, migrate, open_store

REPO = Path(__file__).resolve().parents[3]
TABLES = {"virtual_keys", "real_keys", "usage_records", "audit_events", "price_overrides"}


def head_revision() -> str:
    head = ScriptDirectory.from_config(db_module._alembic_config()).get_current_head()
    assert head is not None
    return head


def test_a_database_not_at_the_files_head_goes_to_alembic(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = open_store(db_url)
    upgrades: list[Engine] = []
    monkeypatch.setattr(db_module, "_upgrade", upgrades.append)
    try:
        migrate(engine)
        assert upgrades == []
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
        migrate(engine)
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE alembic_version"))
        migrate(engine)
        assert upgrades == [engine, engine]
    finally:
        engine.dispose()


def versions(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_open_store_migrates_an_empty_database(db_url: str) -> None:
    engine = open_store(db_url)
    try:
        assert tables(engine) >= TABLES
        assert versions(engine) == [head_revision()]
    finally:
        engine.dispose()


def test_sqlite_database_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "tollkeeper.db"
    engine = open_store(f"sqlite:///{path}")
    try:
        assert path.exists()
        assert tables(engine) >= TABLES
    finally:
        engine.dispose()


def test_a_sqlite_path_with_an_at_sign_can_be_opened(tmp_path: Path) -> None:
    home = tmp_path / "alice@corp.example.com" / ".tollkeeper"  # AD/SSSD-style home directory
    engine = open_store(f"sqlite:///{home / 'tollkeeper.db'}")
    try:
        assert tables(engine) >= TABLES
    finally:
        engine.dispose()


def test_an_in_memory_database_leaves_no_files_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    open_store("sqlite:///:memory:").dispose()
    assert list(tmp_path.iterdir()) == []


def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_url: str) -> None:
    engine = open_store(sqlite_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000
    finally:
        engine.dispose()


def test_migrating_twice_keeps_the_data_and_does_nothing(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = open_store(db_url)
    try:
        with Session(engine) as s:
            row, _ = keys_repo.create_key(
                session=s, project="p", policy=keys_repo.KeyPolicy(), actor="a"
            )

        def no_upgrade(*args: object, **kwargs: object) -> None:
            raise AssertionError("an up-to-date database was upgraded again")

        monkeypatch.setattr(db_module, "_upgrade", no_upgrade)
        migrate(engine)
        second = open_store(db_url)
        second.dispose()
        assert versions(engine) == [head_revision()]
        with Session(engine) as s:
            assert keys_repo.get_key(session=s, key_id=row.id).project == "p"
    finally:
        engine.dispose()


def test_concurrent_migrations_of_a_new_database_both_succeed(db_url: str) -> None:
    n = 4
    barrier = threading.Barrier(n)
    engines: list[Engine] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def start() -> None:
        barrier.wait()
        try:
            e = open_store(db_url)
        except BaseException as exc:
            with lock:
                errors.append(exc)
            return
        with lock:
            engines.append(e)

    threads = [threading.Thread(target=start) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert errors == []
        assert len(engines) == n
        assert versions(engines[0]) == [head_revision()]
        assert tables(engines[0]) >= TABLES
    finally:
        for e in engines:
            e.dispose()


def test_concurrent_processes_migrating_a_new_sqlite_file_all_succeed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    code = "import sys; from addon.store.db import open_store; open_store(sys.argv[1]).dispose()"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, url],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(3)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err.decode() for _, err in results]
    engine = open_store(url)
    try:
        assert versions(engine) == [head_revision()]
    finally:
        engine.dispose()


def test_unreachable_postgresql_is_store_unavailable_in_one_line() -> None:
    url = "postgresql+psycopg://nobody:hunter2@127.0.0.1:1/x"
    with pytest.raises(StoreUnavailable) as exc_info:
        open_store(url)
    message = str(exc_info.value)
    assert message.startswith("database unavailable: ")
    assert "\n" not in message
    assert "hunter2" not in message  # never the password
    assert "127.0.0.1" in message


@pytest.mark.postgres
def test_a_missing_postgresql_database_is_store_unavailable(postgres_url: str) -> None:
    url = make_url(postgres_url).set(database="tollkeeper_no_such_db", query={})
    with pytest.raises(StoreUnavailable, match="tollkeeper_no_such_db") as exc_info:
        open_store(url.render_as_string(hide_password=False))
    assert "\n" not in str(exc_info.value)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "garbage",
        "notadialect://host/db",
        "postgresql+nosuchdriver://host/db",
        "mysql://host/db",  # no MySQL driver installed
        "postgresql+psycopg://u@127.0.0.1:notaport/x",
    ],
)
def test_a_bad_url_is_store_unavailable_in_one_line(url: str) -> None:
    with pytest.raises(StoreUnavailable) as exc_info:
        open_store(url)
    message = str(exc_info.value)
    assert message.startswith("bad database URL: ")
    assert "\n" not in message
