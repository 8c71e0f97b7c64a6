"""What a virtual key's row says, read without SQLAlchemy: its policy and whether it is live.

``KeyRow`` is the shape both the ``VirtualKey`` table and the quick read path's records
(``addon.store.quick``) have, so the CLI shows either the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from addon.alerts import parse_thresholds

BUDGET_PERIODS = ("total", "daily", "monthly")


@dataclass(frozen=True)
class KeyPolicy:
    """Everything about a key except its identity and secret."""

    expires_at: datetime | None = None
    allowed_providers: tuple[str, ...] = ()
    allowed_models: tuple[str, ...] = ()
    budget_picousd: int | None = None
    budget_period: str = "total"
    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None
    allow_unmetered: bool = False
    metadata: dict[str, Any] | None = None
    alert_at: tuple[int, ...] = ()  # budget alert thresholds, percent of the budget


class KeyRow(Protocol):
    """The columns of ``virtual_keys`` that listing a key reads (all but the secret's hash)."""

    @property
    def id(self) -> str: ...
    @property
    def project(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def created_by(self) -> str: ...
    @property
    def expires_at(self) -> datetime | None: ...
    @property
    def revoked_at(self) -> datetime | None: ...
    @property
    def revoked_by(self) -> str | None: ...
    @property
    def revoke_reason(self) -> str | None: ...
    @property
    def allowed_providers(self) -> str: ...
    @property
    def allowed_models(self) -> str: ...
    @property
    def budget_picousd(self) -> int | None: ...
    @property
    def budget_period(self) -> str: ...
    @property
    def rpm(self) -> int | None: ...
    @property
    def tpm(self) -> int | None: ...
    @property
    def max_parallel(self) -> int | None: ...
    @property
    def allow_unmetered(self) -> bool: ...
    @property
    def alert_at(self) -> str: ...
    @property
    def metadata_json(self) -> str: ...


def is_active(row: KeyRow, now: datetime) -> bool:
    return row.revoked_at is None and (row.expires_at is None or row.expires_at > now)


def policy_of(row: KeyRow) -> KeyPolicy:
    return KeyPolicy(
        expires_at=row.expires_at,
        allowed_providers=_split(row.allowed_providers),
        allowed_models=_split(row.allowed_models),
        budget_picousd=row.budget_picousd,
        budget_period=row.budget_period,
        rpm=row.rpm,
        tpm=row.tpm,
        max_parallel=row.max_parallel,
        allow_unmetered=bool(row.allow_unmetered),
        metadata=json.loads(row.metadata_json or "{}"),
        alert_at=_thresholds(row.alert_at),
    )


def _thresholds(value: str) -> tuple[int, ...]:
    try:
        return parse_thresholds(value) if value else ()
    except ValueError:  # written by hand: shown as none rather than failing every read
        return ()


def _split(value: str) -> tuple[str, ...]:
    return tuple(p for p in (s.strip() for s in value.split(",")) if p)
