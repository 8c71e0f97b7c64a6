"""A configured, running gateway over a seeded SQLite store, its records captured."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hookchain import REAL, Driven
from mitmproxy.test import taddons
from sqlmodel import Session

from addon.records import UsageDraft
from addon.store import keys_repo, realkeys_repo
from addon.store.db import open_store
from addon.vault import Vault, load_master_key


@dataclass
class Env:
    gw: Driven
    key: str  # a valid virtual key
    tctx: Any
    drafts: list[UsageDraft] = field(default_factory=list)

    def part(self, kind: type) -> Any:
        """The gateway's addon of this type."""
        return next(a for a in self.gw.gateway.addons if isinstance(a, kind))


@pytest.fixture
def env(tmp_path: Path, tk_home: Path) -> Iterator[Env]:
    url = f"sqlite:///{tmp_path / 'gw.db'}"
    engine = open_store(url)
    vault = Vault(load_master_key(tk_home / "master.key"))
    with Session(engine) as s:
        _, key = keys_repo.create_key(
            session=s, project="unit", policy=keys_repo.KeyPolicy(), actor="t"
        )
        realkeys_repo.add_real_key(
            session=s,
            vault=vault,
            provider="openai",
            label="main",
            secret=REAL,
            env_ref=None,
            base_url="http://127.0.0.1:9/v1",
            actor="t",
        )
    engine.dispose()
    gw = Driven()
    with taddons.context(gw.gateway) as tctx:
        tctx.configure(
            gw.gateway,
            tollkeeper_db=url,
            tollkeeper_home=str(tk_home),
            tollkeeper_probe_upstream=False,
            tollkeeper_admin="off",
        )
        gw.running()
        runtime = gw.runtime
        assert runtime is not None
        e = Env(gw, key, tctx)
        submit = runtime.writer.submit

        def capture(item: object) -> None:
            if isinstance(item, UsageDraft):
                e.drafts.append(item)
            submit(item)

        runtime.writer.submit = capture  # type: ignore[method-assign]
        yield e
        gw.done()
