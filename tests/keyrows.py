"""Virtual keys of every status for listing tests: ``make_keys(engine)``."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from addon.moments import utcnow
from addon.store import keys_repo
from addon.store.key_policy import KeyPolicy

FULL_POLICY = KeyPolicy(
    expires_at=utcnow() + timedelta(days=3),
    allowed_providers=("openai", "anthropic"),
    allowed_models=("gpt-4o*", "claude-*"),
    budget_picousd=12_500_000_000_000,
    budget_period="monthly",
    rpm=60,
    tpm=10_000,
    max_parallel=4,
    allow_unmetered=True,
    metadata={"team": "search", "tags": ["a", "b"]},
    alert_at=(50, 80, 100),
)


def make_keys(engine: Engine) -> dict[str, str]:
    """Keys of every status, one with every policy field set: status -> key id."""
    with Session(engine) as s:
        plain, _ = keys_repo.create_key(session=s, project="a", policy=KeyPolicy(), actor="al")
        full, _ = keys_repo.create_key(session=s, project="b", policy=FULL_POLICY, actor="bo")
        past = KeyPolicy(expires_at=utcnow() - timedelta(minutes=1), rpm=5)
        expired, _ = keys_repo.create_key(session=s, project="b", policy=past, actor="cy")
        gone, _ = keys_repo.create_key(session=s, project="c", policy=FULL_POLICY, actor="di")
        keys_repo.revoke_key(session=s, key_id=gone.id, actor="ed", reason="leaked")
        return {"active": plain.id, "full": full.id, "expired": expired.id, "revoked": gone.id}
