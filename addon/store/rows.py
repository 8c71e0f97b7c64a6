"""A usage record as plain data: what the writer thread builds and inserts.

Building a SQLModel table object costs ~60 µs (instrumentation, validation); the writer
shares the GIL with the proxy's event loop, so its hot path uses this slotted dataclass
with the same attribute names instead. The store accepts either.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from addon.store.models import UsageRecord


@dataclass(frozen=True, slots=True)
class UsageRow:
    request_id: str
    created_at: datetime
    virtual_key_id: str | None
    project: str | None
    provider: str
    real_key_label: str | None
    endpoint: str
    model: str | None
    status_code: int | None
    input_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cost_picousd: int | None
    latency_ms: int | None
    ttfb_ms: int | None
    streamed: bool
    estimated: bool
    error_kind: str | None
    provider_request_id: str | None
    extras_json: str
    end_user: str | None = None  # addon.attribution
    tags: str = ""  # "a,b": addon.attribution's stored form


COLUMNS = tuple(f.name for f in fields(UsageRow))


def as_dict(record: UsageRow | UsageRecord) -> dict[str, Any]:
    return {c: getattr(record, c) for c in COLUMNS}
