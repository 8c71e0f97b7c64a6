"""Everything the hooks use that has a lifetime: store, key cache, pool, vault, writer.

Built once per configuration in ``configure`` and stopped in ``done`` (also on hot reload).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import cast

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from addon.admission import Admission
from addon.alert_watcher import AlertWatcher
from addon.dashboard.view import Dashboard
from addon.draft_codec import encode_draft
from addon.journal import Journal
from addon.keycache import KeyCache
from addon.lookups import KeyLookups
from addon.metrics import GatewayMetrics, LiveState
from addon.options import Config
from addon.pool import Health, Policy, Pool
from addon.pricing.codec import price_from_json
from addon.pricing.table import PriceBook
from addon.records import UsageDraft, finish
from addon.spool import Spool
from addon.store.db import open_store
from addon.store.models import PriceOverride, RealKey
from addon.store.rows import UsageRow
from addon.sweeper import Sweeper
from addon.upstream import UpstreamProbe
from addon.vault import Vault, VaultError, load_master_key, unreadable
from addon.writer import UsageWriter

log = logging.getLogger(__name__)

STOP_GRACE_S = 1.0  # see Runtime.stop


class Runtime:
    def __init__(self, config: Config) -> None:
        self.config = config
        s = config.settings
        s.home.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = open_store(s.db_url)
        self.vault = Vault(load_master_key(s.master_key_path))
        self._check_vault()
        self.cache = KeyCache(self.engine, interval_s=config.refresh_s)
        self.lookups = KeyLookups(self.cache)
        self.sweeper = Sweeper(self.engine)
        self.admission = Admission(
            self.engine,
            instance_id=self.sweeper.instance_id,
            default_output_tokens=config.reserve_output_tokens,
        )
        self.pool = Pool(Policy(key_retry=timedelta(seconds=config.key_retry_s)))
        self.probe = UpstreamProbe()
        self.prices = PriceBook.bundled()
        self._overrides: dict[str, str] = {}
        journal = Journal(s.home / "journal", self._encode)
        spool = Spool(
            s.home / "spool" / f"{journal.instance}.jsonl", quarantine=s.home / "rejected.jsonl"
        )
        self.spool = spool
        self.writer = UsageWriter(
            self.engine, spool, self._finish, journal, s.spool_path, flush_s=config.flush_s
        )
        self.alerts = AlertWatcher(
            self.engine,
            instance_id=self.sweeper.instance_id,
            webhook=config.alert_webhook,
            first_backoff_s=config.alert_retry_s,
        )
        self.writer.keeper.on_committed = self.alerts.notice
        self.metrics = GatewayMetrics(self._live)
        self.dashboard = Dashboard(self.engine, lambda: self._live().real_keys)
        self.cache.on_refresh = self._reload_prices

    def _check_vault(self) -> None:
        """Stop at start, naming them, when stored real keys do not decrypt."""
        with Session(self.engine) as session:
            rows = session.exec(select(RealKey.provider, RealKey.label, RealKey.ciphertext))
            bad = unreadable(self.vault, ((f"{p}/{label}", c) for p, label, c in rows))
        if bad:
            self.engine.dispose()
            raise VaultError(
                f"the master key cannot decrypt the stored real keys {', '.join(bad)} "
                f"(check TOLLKEEPER_MASTER_KEY or {self.config.settings.master_key_path})"
            )

    @staticmethod
    def _encode(draft: object) -> str:
        return encode_draft(cast(UsageDraft, draft))

    def _reload_prices(self, session: Session) -> None:
        rows = session.exec(select(PriceOverride.model, PriceOverride.prices_json))
        overrides = dict(rows.all())
        if overrides == self._overrides:
            return
        prices = {}
        for model, prices_json in overrides.items():
            try:  # an override this release cannot read is skipped, not the whole reload
                prices[model] = price_from_json(json.loads(prices_json))
            except (ValueError, TypeError, AttributeError) as e:
                log.warning("tollkeeper: price override of %s cannot be read (%s)", model, e)
        self._overrides = overrides
        self.prices = PriceBook.bundled().with_overrides(prices)

    def _finish(self, draft: object) -> UsageRow:
        d = cast(UsageDraft, draft)
        row = finish(d, self.prices)
        try:
            self.metrics.observe(d, row)
        except Exception:
            log.exception("tollkeeper: could not update the metrics for a record")
        return row

    def _live(self) -> LiveState:
        now = datetime.now(UTC)
        keys = tuple(
            (k.provider, k.label, self._key_state(self.pool.health(k), now))
            for keys in self.cache.real_keys.values()
            for k in keys
        )
        return LiveState(
            writer_queue_depth=self.writer.queue_depth,
            spool_bytes=self.spool.size(),
            records_written=self.writer.written,
            real_keys=keys,
        )

    @staticmethod
    def _key_state(health: Health, now: datetime) -> str:
        """healthy, cooling, half_open (its backoff is over: the next request is its trial)
        or disabled."""
        until = health.cooldown_until
        if health.status == "disabled":
            return "disabled"
        if until is not None and until > now:
            return "cooling"
        return "half_open" if health.status == "cooling" else "healthy"

    def readiness(self) -> dict[str, str]:
        """Each check: "ok" or what is wrong (the admin listener's /readyz)."""
        checks = {"database": self._database_check()}
        checks["recording"] = (
            "ok"
            if self.writer.accepting
            else f"not forwarding: {self.writer.keeper.not_accepting_why or 'cannot keep records'}"
        )
        checks["spool"] = "ok" if not self.spool.pending() else "records wait in the spool"
        checks["keys"] = "stale: refreshing from the database fails" if self.cache.failing else "ok"
        now = datetime.now(UTC)
        for provider, keys in sorted(self.cache.real_keys.items()):
            states = [self._key_state(self.pool.health(k), now) for k in keys]
            usable = states.count("healthy") + states.count("half_open")
            checks[f"real_keys:{provider}"] = (
                "ok" if usable else f"no usable key ({len(keys)} configured: {', '.join(states)})"
            )
        return checks

    def _database_check(self) -> str:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("select 1"))
        except Exception as e:  # noqa: BLE001 - reported, not raised
            return f"unreachable: {type(e).__name__}"
        return "ok"

    def start(self) -> None:
        self.cache.start()
        self.sweeper.start()  # releases what dead gateways left in flight, before admitting
        self.writer.start()
        self.alerts.start()

    def stop(self) -> None:
        """The writer has its own budget: it keeps every record. The key refresh and the
        housekeeping are told to end first and then share ``STOP_GRACE_S``: their last round
        can wait for the next start, and a hanging database must not hold up SIGTERM."""
        self.cache.request_stop()
        self.sweeper.request_stop()
        self.lookups.stop()
        self.admission.stop()
        self.writer.stop()
        self.alerts.stop()  # after the writer: its last commits are checked too
        until = time.monotonic() + STOP_GRACE_S
        self.cache.stop(timeout_s=max(0.0, until - time.monotonic()))
        self.sweeper.stop(timeout_s=max(0.0, until - time.monotonic()))
        self.engine.dispose()
