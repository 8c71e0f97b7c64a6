"""Everything the hooks use that has a lifetime: store, key cache, pool, vault, writer.

Built once per configuration in ``configure`` and stopped in ``done`` (also on hot reload).
"""

from __future__ import annotations

import json
import logging
from typing import cast

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from addon.admission import Admission
from addon.keycache import KeyCache
from addon.lookups import KeyLookups
from addon.options import Config
from addon.pool import Pool
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
        self.admission = Admission(self.engine, instance_id=self.sweeper.instance_id)
        self.pool = Pool()
        self.probe = UpstreamProbe()
        self.prices = PriceBook.bundled()
        self._overrides: dict[str, str] = {}
        self.writer = UsageWriter(self.engine, Spool(s.spool_path), self._finish)
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

    def _reload_prices(self, session: Session) -> None:
        rows = session.exec(select(PriceOverride.model, PriceOverride.prices_json))
        overrides = dict(rows.all())
        if overrides == self._overrides:
            return
        prices = {}
        for model, text in overrides.items():
            try:  # an override this release cannot read is skipped, not the whole reload
                prices[model] = price_from_json(json.loads(text))
            except (ValueError, TypeError, AttributeError) as e:
                log.warning("tollkeeper: price override of %s cannot be read (%s)", model, e)
        self._overrides = overrides
        self.prices = PriceBook.bundled().with_overrides(prices)

    def _finish(self, draft: object) -> UsageRow:
        return finish(cast(UsageDraft, draft), self.prices)

    def start(self) -> None:
        self.cache.start()
        self.sweeper.start()  # releases what dead gateways left in flight, before admitting
        self.writer.start()

    def stop(self) -> None:
        self.cache.stop()
        self.lookups.stop()
        self.admission.stop()
        self.writer.stop()
        self.sweeper.stop()
        self.engine.dispose()
