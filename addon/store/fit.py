"""Make a usage record storable: every value within what its column can hold.

An upstream can report anything (a usage count above int64, a negative count, a NUL byte
in a model name), and one such value must not cost the other records of a batch. Counts
are clamped and text loses its NUL bytes; the original values of clamped numbers are kept
in ``extras_json["clamped"]`` so nothing is silently changed. The limits are below the
columns' own (int32 tokens, int64 cost): the counters that sum records (per key and
minute, per key and day) must not overflow either. No real request comes near them: 100
million tokens in one field, $10,000 for one request.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from addon.store.rows import UsageRow

INT32_MAX = 2**31 - 1
TOKENS_MAX = 100_000_000
COST_MAX_PICOUSD = 10_000 * 10**12

_INT_COLUMNS = {  # column -> highest value it may hold (all are >= 0)
    "status_code": INT32_MAX,
    "input_tokens": TOKENS_MAX,
    "cached_input_tokens": TOKENS_MAX,
    "cache_write_tokens": TOKENS_MAX,
    "output_tokens": TOKENS_MAX,
    "reasoning_tokens": TOKENS_MAX,
    "latency_ms": INT32_MAX,
    "ttfb_ms": INT32_MAX,
    "cost_picousd": COST_MAX_PICOUSD,
}
_NULLABLE = frozenset({"status_code", "latency_ms", "ttfb_ms", "cost_picousd"})
_TEXT_COLUMNS = (
    "request_id",
    "virtual_key_id",
    "project",
    "provider",
    "real_key_label",
    "endpoint",
    "model",
    "error_kind",
    "provider_request_id",
    "extras_json",
    "end_user",
    "tags",
)


def fit_row(row: UsageRow) -> UsageRow:
    """``row`` itself when it fits, else a copy whose values fit."""
    changes: dict[str, Any] = {}
    clamped: dict[str, str] = {}
    for name, high in _INT_COLUMNS.items():
        value = getattr(row, name)
        if value is None and name in _NULLABLE:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            changes[name] = None if name in _NULLABLE else 0
            clamped[name] = repr(value)[:100]
        elif not 0 <= value <= high:
            changes[name], clamped[name] = min(max(value, 0), high), str(value)[:100]
    for name in _TEXT_COLUMNS:
        value = getattr(row, name)
        if isinstance(value, str) and "\x00" in value:
            changes[name] = value.replace("\x00", "")
    if clamped:
        changes["extras_json"] = _with_clamped(changes.get("extras_json", row.extras_json), clamped)
    return dataclasses.replace(row, **changes) if changes else row


def _with_clamped(extras_json: str, clamped: dict[str, str]) -> str:
    try:
        extras = json.loads(extras_json)
    except ValueError:
        extras = {"unreadable_extras": extras_json}
    if not isinstance(extras, dict):
        extras = {"extras": extras}
    extras["clamped"] = clamped
    return json.dumps(extras, sort_keys=True)
