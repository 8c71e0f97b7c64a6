"""Everything the hooks use that has a lifetime: store, key cache, pool, vault, writer.

Built once per configuration in ``configure`` and stopped in ``done`` (also on hot reload).
"""

from __future__ import annotations

import logging
from typing import cast

from sqlalchemy.engine import Engine
from sqlmodel import Session

from addon.draft_codec import encode_draft
from addon.journal import Journal
from addon.keycache import KeyCache
from addon.options import Config
from addon.pool import Pool
from addon.pricing.codec import price_from_json
from addon.pricing.table import PriceBook
from addon.records import UsageDraft, finish
from addon.spool import Spool
from addon.store.db import open_store
from addon.store.prices_repo import list_overrides
from addon.store.rows import UsageRow
from addon.upstream import UpstreamProbe
from addon.vault import Vault, load_master_key
from addon.writer import UsageWriter

log = logging.getLogger(__name__)


class Runtime:
    def __init__(self, config: Config) -> None:
        self.config = config
        s = config.settings
        s.home.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = open_store(s.db_url)
        self.vault = Vault(load_master_key(s.master_key_path))
        self.cache = KeyCache(self.engine, interval_s=config.refresh_s)
        self.pool = Pool()
        self.probe = UpstreamProbe()
        self.prices = PriceBook.bundled()
        self._overrides: dict[str, dict[str, str]] = {}
        journal = Journal(s.home / "journal", self._encode)
        spool = Spool(
            s.home / "spool" / f"{journal.instance}.jsonl", quarantine=s.home / "rejected.jsonl"
        )
        self.writer = UsageWriter(self.engine, spool, self._finish, journal, s.spool_path)
        self.cache.on_refresh = self._reload_prices

    def _reload_prices(self, session: Session) -> None:
        overrides = list_overrides(session=session)
        if overrides != self._overrides:
            self._overrides = overrides
            self.prices = PriceBook.bundled().with_overrides(
                {m: price_from_json(p) for m, p in overrides.items()}
            )

    @staticmethod
    def _encode(draft: object) -> str:
        return encode_draft(cast(UsageDraft, draft))

    def _finish(self, draft: object) -> UsageRow:
        return finish(cast(UsageDraft, draft), self.prices)

    def start(self) -> None:
        self.cache.start()
        self.writer.start()

    def stop(self) -> None:
        self.cache.stop()
        self.writer.stop()
        self.engine.dispose()
