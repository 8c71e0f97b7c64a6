"""A configured, running gateway over a seeded SQLite store, its records captured."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hookchain import Driven, running, seed

from addon.records import UsageDraft


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
    key = seed(tmp_path / "gw.db", tk_home)
    with running(tmp_path / "gw.db", tk_home, tollkeeper_admin="off") as (gw, tctx):
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
