"""Values an upstream may report that no column can hold are fitted, and say so."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

from addon.store.fit import COST_MAX_PICOUSD, INT32_MAX, TOKENS_MAX, fit_row
from addon.store.rows import UsageRow

ROW = UsageRow(
    request_id="r1",
    created_at=datetime(2026, 3, 1, tzinfo=UTC),
    virtual_key_id="abc",
    project="p",
    provider="openai",
    real_key_label="main",
    endpoint="/v1/chat/completions",
    model="gpt-4o-mini",
    status_code=200,
    input_tokens=10,
    cached_input_tokens=0,
    cache_write_tokens=0,
    output_tokens=2,
    reasoning_tokens=0,
    cost_picousd=123,
    latency_ms=5,
    ttfb_ms=None,
    streamed=False,
    estimated=False,
    error_kind=None,
    provider_request_id=None,
    extras_json='{"service_tier": "default"}',
)


def test_a_row_that_fits_is_returned_unchanged() -> None:
    assert fit_row(ROW) is ROW


def test_counts_out_of_range_are_clamped_and_the_originals_kept_in_extras() -> None:
    row = dataclasses.replace(
        ROW, input_tokens=2**70, output_tokens=-5, cost_picousd=2**80, latency_ms=2**40
    )
    fitted = fit_row(row)
    assert fitted.input_tokens == TOKENS_MAX
    assert fitted.output_tokens == 0
    assert fitted.cost_picousd == COST_MAX_PICOUSD
    assert fitted.latency_ms == INT32_MAX
    extras = json.loads(fitted.extras_json)
    assert extras["service_tier"] == "default"
    assert extras["clamped"] == {
        "input_tokens": str(2**70),
        "output_tokens": "-5",
        "cost_picousd": str(2**80),
        "latency_ms": str(2**40),
    }


def test_values_of_the_wrong_type_become_null_or_zero() -> None:
    row = dataclasses.replace(ROW, status_code="200", reasoning_tokens=1.5)  # type: ignore[arg-type]
    fitted = fit_row(row)
    assert (fitted.status_code, fitted.reasoning_tokens) == (None, 0)


def test_nul_bytes_leave_text() -> None:
    row = dataclasses.replace(ROW, model="gpt\x00-4o", provider_request_id="req\x00\x00x")
    fitted = fit_row(row)
    assert (fitted.model, fitted.provider_request_id) == ("gpt-4o", "reqx")
    assert "clamped" not in json.loads(fitted.extras_json)
