"""A key's policy and liveness, read from any row shaped like ``virtual_keys``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from addon.store.key_policy import KeyPolicy, is_active, policy_of
from addon.store.models import VirtualKey

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
FIELDS: dict[str, Any] = {
    "id": "abcdefghij",
    "project": "p",
    "secret_hash": "h",
    "created_at": NOW - timedelta(days=1),
    "created_by": "a",
    "allowed_providers": " openai, ,anthropic",
    "allowed_models": "gpt-4o*",
    "budget_picousd": 5,
    "budget_period": "daily",
    "rpm": 1,
    "tpm": 2,
    "max_parallel": 3,
    "allow_unmetered": True,
    "alert_at": "50,100",
    "metadata_json": '{"team": "x"}',
}


def row(**changes: Any) -> VirtualKey:
    return VirtualKey(**{**FIELDS, **changes})


ROW = row()


def test_the_policy_of_a_row() -> None:
    assert policy_of(ROW) == KeyPolicy(
        allowed_providers=("openai", "anthropic"),
        allowed_models=("gpt-4o*",),
        budget_picousd=5,
        budget_period="daily",
        rpm=1,
        tpm=2,
        max_parallel=3,
        allow_unmetered=True,
        metadata={"team": "x"},
        alert_at=(50, 100),
    )


def test_empty_fields_and_hand_written_thresholds_read_as_none() -> None:
    empty = row(allowed_providers="", alert_at="lots", metadata_json="")
    policy = policy_of(empty)
    assert (policy.allowed_providers, policy.alert_at, policy.metadata) == ((), (), {})


def test_a_key_is_active_until_revoked_or_expired() -> None:
    assert is_active(ROW, NOW)
    assert is_active(row(expires_at=NOW + timedelta(seconds=1)), NOW)
    assert not is_active(row(expires_at=NOW), NOW)
    assert not is_active(row(revoked_at=NOW - timedelta(seconds=1)), NOW)
