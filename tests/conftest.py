"""Shared fixtures: a fresh database per test, on SQLite and (when available) PostgreSQL.

PostgreSQL tests use ``TOLLKEEPER_TEST_POSTGRES_URL``; each test gets its own schema. Without
that variable they skip with the reason; with ``TOLLKEEPER_REQUIRE_POSTGRES=1`` (set by
``.ci/run``) a missing or unreachable server is a failure, not a skip.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from migrated import Templates
from sqlalchemy import create_engine, text

from addon.settings import normalize_db_url

PG_ENV = "TOLLKEEPER_TEST_POSTGRES_URL"

# The suite shares two cores with the mitmdump processes of the integration tests: how fast
# hypothesis generates inputs there is not a property of the code (it failed a run once).
settings.register_profile("tollkeeper", suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("tollkeeper")


def _postgres_base_url() -> str:
    url = os.environ.get(PG_ENV)
    required = os.environ.get("TOLLKEEPER_REQUIRE_POSTGRES") == "1"
    if not url:
        if required:
            pytest.fail(f"{PG_ENV} is not set but TOLLKEEPER_REQUIRE_POSTGRES=1")
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (e.g. postgresql://postgres@127.0.0.1/test)")
    return normalize_db_url(url)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose connections live in a fresh, private schema (dropped afterwards)."""
    base = _postgres_base_url()
    schema = "tk_" + secrets.token_hex(6)
    admin = create_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as e:
        admin.dispose()
        if os.environ.get("TOLLKEEPER_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL at {base} unusable: {e}")
        pytest.skip(f"PostgreSQL at {base} unusable: {e}")
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tollkeeper.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Run the test once on SQLite and once on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


@pytest.fixture(scope="session")
def _templates(tmp_path_factory: pytest.TempPathFactory) -> Templates:
    return Templates(tmp_path_factory.mktemp("templates"))


@pytest.fixture
def migrated_db_url(db_url: str, _templates: Templates) -> str:
    """``db_url``, already migrated to the newest revision (a copy of a migrated database:
    tests/migrated.py). For tests that need the schema, not a test of migrating."""
    _templates.copy_into(db_url)
    return db_url


@pytest.fixture
def tk_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated TOLLKEEPER_HOME with its own master key file."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("TOLLKEEPER_HOME", str(home))
    monkeypatch.delenv("TOLLKEEPER_DB", raising=False)
    monkeypatch.delenv("TOLLKEEPER_MASTER_KEY", raising=False)
    return home
