"""Usage records for the dashboard tests: three projects over two days, priced, unpriced,
an upstream error and a gateway rejection."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from addon.store.db import open_store
from addon.store.models import UsageRecord
from addon.store.usage_repo import insert_records

DAY1 = datetime(2025, 1, 1, 10, tzinfo=UTC)
DAY2 = datetime(2025, 1, 2, 12, tzinfo=UTC)
HOSTILE = '</script><img src=x onerror="alert(1)">'


def record(n: int, when: datetime, **fields: object) -> UsageRecord:
    base: dict[str, object] = {"provider": "openai", "real_key_label": "main", "status_code": 200}
    return UsageRecord(request_id=f"req-{n}", created_at=when, **{**base, **fields})


ROWS = [
    record(1, DAY1, virtual_key_id="k1", project="alpha", model="gpt-4o", input_tokens=1000,
           output_tokens=500, cost_picousd=1_500_000_000),
    record(2, DAY1.replace(hour=11), virtual_key_id="k1", project="alpha", model="gpt-4o",
           input_tokens=10, output_tokens=5, cost_picousd=3),
    record(3, DAY2, virtual_key_id="k2", project="beta", model="mystery", input_tokens=700,
           output_tokens=70, cost_picousd=None),
    record(4, DAY2, virtual_key_id="k2", project="beta", model="gpt-4o", status_code=502,
           error_kind="upstream_error", cost_picousd=0),
    record(5, DAY2, virtual_key_id="k3", project=HOSTILE, model=HOSTILE, status_code=401,
           real_key_label=None, error_kind="invalid_key", cost_picousd=None),
]  # fmt: skip


@pytest.fixture
def engine(migrated_db_url: str) -> Iterator[Engine]:
    engine = open_store(migrated_db_url)
    with Session(engine) as s:
        insert_records(session=s, records=[r.model_copy() for r in ROWS])
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as s:
        yield s
