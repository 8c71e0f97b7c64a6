"""Upgrades keep data: a database created by an older release migrates to the newest schema."""

from __future__ import annotations

from oldschema import at_revision
from sqlalchemy import text
from sqlmodel import Session

from addon.store.db import make_engine, migrate
from addon.store.realkeys_repo import list_real_keys


def test_a_populated_database_from_the_first_release_upgrades_with_its_data(db_url: str):
    engine = make_engine(db_url)
    with at_revision(engine, "0001") as conn:
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


def test_usage_records_from_before_attribution_upgrade_unattributed(db_url: str):
    engine = make_engine(db_url)
    with at_revision(engine, "0005") as conn:
        conn.execute(
            text(
                "INSERT INTO usage_records (request_id, created_at, provider, endpoint,"
                " input_tokens, cached_input_tokens, cache_write_tokens, output_tokens,"
                " reasoning_tokens, streamed, estimated, extras_json) VALUES ('old',"
                " CURRENT_TIMESTAMP, 'openai', '/v1/chat/completions', 1, 0, 0, 1, 0,"
                " false, false, '{}')"
            )
        )
    migrate(engine)
    with Session(engine) as s:
        row = s.exec(text("SELECT request_id, end_user, tags FROM usage_records")).one()
        assert tuple(row) == ("old", None, "")
    engine.dispose()
