"""In-memory snapshot of virtual and real keys, refreshed from the database by a thread.

Hooks read the snapshot without I/O. A revocation made by the CLI (in any process) is
seen within ``interval_s``: each tick reads only what changed (``store.changes``: new
audit events name the keys to re-read; real keys, providers and prices are small and
re-read whole when they change; real-key health re-reads only the real keys). A full
reload happens at start and every ``full_every_s`` as a safety net. A tick that fails
changes nothing, so the next one retries it; a row that cannot be read is skipped and
logged (a virtual key that cannot be read is refused, never kept in an older state).
A key id missing from the snapshot (created a moment ago) can be looked up once with
``load_one`` from a worker thread; misses are remembered for a second (``MissCache``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from addon.negcache import MissCache
from addon.providers.base import Provider
from addon.providers.registry import Registry
from addon.store import changes
from addon.store.custom_providers_repo import as_providers
from addon.store.key_policy import policy_of
from addon.store.models import CustomProvider, RealKey, VirtualKey

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


ROW_ERRORS = (ValueError, TypeError, KeyError, AttributeError, AssertionError)


def _key_or_none(row: VirtualKey) -> KeyInfo | None:
    try:
        return _key_info(row)
    except ROW_ERRORS as e:
        log.warning("tollkeeper: virtual key %s cannot be read (%s); refusing it", row.id, e)
        return None


def _keys_of(rows: Iterable[VirtualKey]) -> dict[str, KeyInfo]:
    return {info.id: info for info in map(_key_or_none, rows) if info is not None}


def _pools(rows: Iterable[RealKey]) -> dict[str, tuple[RealKeyInfo, ...]]:
    pools: dict[str, list[RealKeyInfo]] = {}
    for row in rows:
        try:
            info = _real_info(row)
        except ROW_ERRORS as e:
            log.warning(
                "tollkeeper: real key %s/%s cannot be read (%s)", row.provider, row.label, e
            )
            continue
        pools.setdefault(info.provider, []).append(info)
    return {k: tuple(v) for k, v in pools.items()}


class KeyCache:
    def __init__(
        self, engine: Engine, *, interval_s: float = 0.5, full_every_s: float = 300.0
    ) -> None:
        self._engine = engine
        self._interval_s = interval_s
        self._full_every_s = full_every_s
        self.keys: dict[str, KeyInfo] = {}
        self.real_keys: dict[str, tuple[RealKeyInfo, ...]] = {}
        self.registry = Registry()
        self.misses = MissCache()
        self.on_registry_change: Callable[[], None] | None = None  # provider hosts changed
        self.on_refresh: Callable[[Session], None] | None = None  # e.g. reload price overrides
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False
        self._keys_lock = threading.Lock()  # writers of self.keys (refresh and load_one)
        self._cursor: changes.Cursor | None = None  # None: the next refresh reloads all
        self._real_mark: tuple[object, ...] | None = None
        self._full_at = 0.0  # time.monotonic() of the last full reload

    @property
    def interval_s(self) -> float:
        return self._interval_s

    def refresh(self, *, force: bool = False) -> None:
        """Bring the snapshot up to date (worker thread only): what changed since the last
        refresh, or everything when forced, at start and every ``full_every_s``. Raises on
        failure with nothing applied, so the next call retries the same changes."""
        full_due = time.monotonic() - self._full_at >= self._full_every_s
        with Session(self._engine) as s:
            if force or full_due or self._cursor is None:
                self._reload_all(s)
                return
            found, cursor = changes.read(s, self._cursor)
            if found.full:
                self._reload_all(s)
                return
            mark = changes.real_keys_mark(s)
            updated = self._read_keys(s, found.key_ids)
            pools = self._read_pools(s) if found.others or mark != self._real_mark else None
            customs = as_providers(s.exec(select(CustomProvider))) if found.others else None
            if found.others and self.on_refresh is not None:
                self.on_refresh(s)
        self._merge_keys(found.key_ids, updated)
        if pools is not None:
            self.real_keys = pools
        if customs is not None:
            self._set_registry(customs)
        self._cursor, self._real_mark = cursor, mark

    def _reload_all(self, s: Session) -> None:
        cursor, mark = changes.head(s), changes.real_keys_mark(s)  # before the rows they cover
        vkeys = _keys_of(s.exec(select(VirtualKey)))
        pools = self._read_pools(s)
        customs = as_providers(s.exec(select(CustomProvider)))
        if self.on_refresh is not None:
            self.on_refresh(s)
        with self._keys_lock:
            self.keys = vkeys  # whole-dict assignment: readers never see a half-built map
        self.real_keys = pools
        self._set_registry(customs)
        self._cursor, self._real_mark, self._full_at = cursor, mark, time.monotonic()

    @staticmethod
    def _read_keys(s: Session, key_ids: frozenset[str]) -> dict[str, KeyInfo]:
        out: dict[str, KeyInfo] = {}
        ids = sorted(key_ids)
        for i in range(0, len(ids), 500):
            rows = s.exec(select(VirtualKey).where(col(VirtualKey.id).in_(ids[i : i + 500])))
            out.update(_keys_of(rows))
        return out

    @staticmethod
    def _read_pools(s: Session) -> dict[str, tuple[RealKeyInfo, ...]]:
        return _pools(s.exec(select(RealKey).order_by(col(RealKey.id))))

    def _merge_keys(self, touched: frozenset[str], updated: dict[str, KeyInfo]) -> None:
        if not touched:
            return
        with self._keys_lock:  # in place: a reader's dict.get sees the old or the new entry
            for key_id in touched - updated.keys():
                self.keys.pop(key_id, None)  # gone, or unreadable: refused
            self.keys.update(updated)
        self.misses.forget(touched)

    def _set_registry(self, customs: tuple[Provider, ...]) -> None:
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
        """Look one key up in the database (worker thread); a miss is remembered."""
        if key_id in self.misses:
            return None
        with Session(self._engine) as s:
            row = s.get(VirtualKey, key_id)
        info = _key_or_none(row) if row is not None else None
        if info is None:
            self.misses.add(key_id)
            return None
        with self._keys_lock:  # a refresh may have brought a newer state meanwhile
            return self.keys.setdefault(key_id, info)

    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="tollkeeper-keycache", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Tell the refresh thread to end after the refresh it runs (never waits)."""
        self._stop.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)  # a daemon: a hung refresh is left behind

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
