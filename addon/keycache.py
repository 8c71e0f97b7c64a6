"""In-memory snapshot of virtual and real keys, refreshed from the database by a thread.

Hooks read the snapshot without I/O. A revocation made by the CLI (in any process) is
seen within ``interval_s``. A key id missing from the snapshot (created a moment ago) can
be looked up once with ``load_one`` from a worker thread.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from addon.providers.base import Provider
from addon.providers.registry import Registry, custom_provider
from addon.store.keys_repo import policy_of
from addon.store.models import AuditEvent, CustomProvider, RealKey, VirtualKey

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeyInfo:
    id: str
    project: str
    secret_hash: str
    expires_at: datetime | None
    revoked: bool
    allowed_providers: tuple[str, ...]
    allowed_models: tuple[str, ...]
    budget_picousd: int | None
    budget_period: str
    rpm: int | None
    tpm: int | None
    max_parallel: int | None
    allow_unmetered: bool = False  # may a limited key reach endpoints without a meter?


@dataclass(frozen=True)
class RealKeyInfo:
    id: int
    provider: str
    label: str
    base_url: str | None
    ciphertext: str | None
    env_ref: str | None
    status: str
    cooldown_until: datetime | None
    auth_failures: int
    model_map: tuple[tuple[str, str], ...] = ()  # Azure: deployment -> model
    last_error: str | None = None
    health_at: datetime | None = None  # when the stored health was written


def _key_info(row: VirtualKey) -> KeyInfo:
    p = policy_of(row)
    return KeyInfo(
        id=row.id,
        project=row.project,
        secret_hash=row.secret_hash,
        expires_at=row.expires_at,
        revoked=row.revoked_at is not None,
        allowed_providers=p.allowed_providers,
        allowed_models=p.allowed_models,
        budget_picousd=p.budget_picousd,
        budget_period=p.budget_period,
        rpm=p.rpm,
        tpm=p.tpm,
        max_parallel=p.max_parallel,
        allow_unmetered=p.allow_unmetered,
    )


def _real_info(row: RealKey) -> RealKeyInfo:
    assert row.id is not None
    return RealKeyInfo(
        id=row.id,
        provider=row.provider,
        label=row.label,
        base_url=row.base_url,
        ciphertext=row.ciphertext,
        env_ref=row.env_ref,
        status=row.status,
        cooldown_until=row.cooldown_until,
        auth_failures=row.consecutive_auth_failures,
        model_map=tuple(sorted(json.loads(row.model_map_json or "{}").items())),
        last_error=row.last_error,
        health_at=row.updated_at,
    )


def _customs(rows: list[CustomProvider]) -> tuple[Provider, ...]:
    """Defined providers; a row that no longer makes sense is skipped, never fatal."""
    out = []
    for row in rows:
        hosts = tuple(h.strip() for h in row.hosts.split(",") if h.strip())
        try:
            out.append(
                custom_provider(
                    name=row.name,
                    base_url=row.base_url,
                    hosts=hosts,
                    auth=row.auth,
                    wire_format=row.wire_format,
                )
            )
        except ValueError as e:
            log.warning("tollkeeper: ignoring custom provider %s: %s", row.name, e)
    return tuple(out)


class KeyCache:
    def __init__(self, engine: Engine, *, interval_s: float = 0.5) -> None:
        self._engine = engine
        self._interval_s = interval_s
        self.keys: dict[str, KeyInfo] = {}
        self.real_keys: dict[str, tuple[RealKeyInfo, ...]] = {}
        self.registry = Registry()
        self.on_registry_change: Callable[[], None] | None = None  # provider hosts changed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False
        self.on_refresh: Callable[[Session], None] | None = None  # e.g. reload price overrides
        self._last_fingerprint: tuple[object, ...] | None = None

    @staticmethod
    def _fingerprint(s: Session) -> tuple[object, ...]:
        """Changes whenever an admin changes keys, real keys or prices: each such change
        writes an audit event, whose id the database assigns in increasing order (no
        dependence on clocks). Real-key health, written by gateways, is added on top."""
        last_event = s.exec(select(func.max(AuditEvent.id))).one()
        health = s.exec(select(func.count(), func.max(RealKey.updated_at))).one()
        return (last_event, *health)

    def refresh(self, *, force: bool = False) -> None:
        """Replace the snapshot with the database's current state (worker thread only);
        a cheap fingerprint query first, the full reload only when something changed."""
        with Session(self._engine) as s:
            fingerprint = self._fingerprint(s)
            if not force and fingerprint == self._last_fingerprint:
                return
            self._last_fingerprint = fingerprint
            vkeys = {r.id: _key_info(r) for r in s.exec(select(VirtualKey))}
            pools: dict[str, list[RealKeyInfo]] = {}
            for r in s.exec(select(RealKey).order_by(RealKey.id)):  # type: ignore[arg-type]
                pools.setdefault(r.provider, []).append(_real_info(r))
            customs = _customs(list(s.exec(select(CustomProvider))))
            if self.on_refresh is not None:
                self.on_refresh(s)
        self.keys = vkeys  # whole-dict assignment: readers never see a half-built map
        self.real_keys = {k: tuple(v) for k, v in pools.items()}
        registry = Registry(customs)
        hosts_changed = registry.allow_hosts_patterns() != self.registry.allow_hosts_patterns()
        self.registry = registry
        if hosts_changed and self.on_registry_change is not None:
            self.on_registry_change()

    @property
    def failing(self) -> bool:
        """True while refreshing from the database fails (the snapshot is getting stale)."""
        return self._failing

    def load_one(self, key_id: str) -> KeyInfo | None:
        with Session(self._engine) as s:
            row = s.get(VirtualKey, key_id)
        if row is None:
            return None
        info = _key_info(row)
        self.keys = {**self.keys, key_id: info}
        return info

    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="tollkeeper-keycache", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.refresh()
                if self._failing:
                    log.warning("tollkeeper: key cache refresh works again")
                self._failing = False
            except Exception as e:  # noqa: BLE001 - keep serving the last snapshot
                if not self._failing:
                    log.warning("tollkeeper: key cache refresh failed (%s); keeping last", e)
                self._failing = True
