"""Upgrades keep data: a database created by an older release migrates to the newest schema."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text
from sqlmodel import Session

from addon.store.db import _alembic_config, make_engine, migrate
from addon.store.realkeys_repo import list_real_keys


def test_a_populated_database_from_the_first_release_upgrades_with_its_data(db_url: str):
    engine = make_engine(db_url)
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(
            text(
                "INSERT INTO real_keys (provider, label, last4, created_at, updated_at, status,"
                " consecutive_auth_failures, ciphertext) VALUES ('openai', 'old', 'abcd',"
                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 'healthy', 0, 'x')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO virtual_keys (id, project, secret_hash, created_at, created_by,"
                " updated_at, allowed_providers, allowed_models, budget_period, metadata_json)"
                " VALUES ('abcdefghij', 'p', 'h', CURRENT_TIMESTAMP, 'a', CURRENT_TIMESTAMP,"
                " '', '', 'total', '{}')"
            )
        )
    migrate(engine)
    with Session(engine) as s:
        (row,) = list_real_keys(session=s)
        assert (row.label, row.model_map_json) == ("old", "{}")
        assert s.exec(text("SELECT project FROM virtual_keys")).one()[0] == "p"
        assert s.exec(text("SELECT count(*) FROM custom_providers")).one()[0] == 0
    engine.dispose()
