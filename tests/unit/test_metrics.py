"""Prometheus metrics: one observation per finished record, bounded labels, live gauges."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from addon import metrics
from addon.metrics import GatewayMetrics, LiveState
from addon.records import UsageDraft
from addon.store.rows import UsageRow

NOW = datetime(2026, 12, 1, tzinfo=UTC)
DRAFT = UsageDraft(
    request_id="r1", created_at=NOW, provider="openai", api="openai.chat", endpoint="/v1/x"
)
ROW = UsageRow(
    request_id="r1",
    created_at=NOW,
    virtual_key_id="k1",
    project="alpha",
    provider="openai",
    real_key_label="main",
    endpoint="/v1/chat/completions",
    model="gpt-4o-mini",
    status_code=200,
    input_tokens=1200,
    cached_input_tokens=1024,
    cache_write_tokens=0,
    output_tokens=40,
    reasoning_tokens=0,
    cost_picousd=123_000_000,  # $0.000123
    latency_ms=250,
    ttfb_ms=40,
    streamed=True,
    estimated=False,
    error_kind=None,
    provider_request_id="req_1",
    extras_json="{}",
)


def samples(m: GatewayMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(m.render().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(m: GatewayMetrics, name: str, **labels: str) -> float | None:
    return samples(m).get((name, tuple(sorted(labels.items()))))


def test_a_forwarded_request_counts_once_with_its_tokens_cost_and_durations() -> None:
    m = GatewayMetrics()
    m.observe(replace(DRAFT, forwarded=True), ROW)
    m.observe(replace(DRAFT, forwarded=True), ROW)
    base = {"provider": "openai", "model": "gpt-4o-mini"}
    assert value(m, "tollkeeper_requests_total", **base, status="200", project="alpha") == 2
    assert value(m, "tollkeeper_tokens_total", **base, project="alpha", type="input") == 2400
    assert value(m, "tollkeeper_tokens_total", **base, project="alpha", type="cached_input") == 2048
    assert value(m, "tollkeeper_tokens_total", **base, project="alpha", type="output") == 80
    assert value(m, "tollkeeper_tokens_total", **base, project="alpha", type="reasoning") is None
    assert value(m, "tollkeeper_cost_usd_total", **base, project="alpha") == 0.000246
    otel = {"gen_ai_system": "openai", "gen_ai_request_model": "gpt-4o-mini"}
    assert value(m, "gen_ai_client_token_usage_sum", **otel, gen_ai_token_type="input") == 2400
    assert value(m, "gen_ai_client_operation_duration_seconds_count", **otel) == 2
    assert value(m, "gen_ai_server_time_to_first_token_seconds_sum", **otel) == 0.08


def test_a_rejection_counts_by_code_and_meters_nothing() -> None:
    m = GatewayMetrics()
    row = replace(ROW, status_code=401, error_kind="invalid_key", input_tokens=0, output_tokens=0)
    m.observe(DRAFT, row)  # not forwarded: the gateway answered itself
    assert value(m, "tollkeeper_rejections_total", code="invalid_key") == 1
    assert not [k for k in samples(m) if k[0] == "tollkeeper_tokens_total"]


def test_an_unpriced_request_is_counted_as_such_never_as_zero_dollars() -> None:
    m = GatewayMetrics()
    m.observe(replace(DRAFT, forwarded=True), replace(ROW, cost_picousd=None))
    labels = {"provider": "openai", "model": "gpt-4o-mini"}
    assert value(m, "tollkeeper_unpriced_requests_total", **labels) == 1
    assert value(m, "tollkeeper_cost_usd_total", **labels, project="alpha") is None


def test_model_labels_are_bounded(monkeypatch) -> None:
    monkeypatch.setattr(metrics, "MAX_LABEL_VALUES", 3)
    m = GatewayMetrics()
    for i in range(6):
        m.observe(replace(DRAFT, forwarded=True), replace(ROW, model=f"m{i}"))
    models = {dict(k[1]).get("model") for k in samples(m) if k[0] == "tollkeeper_requests_total"}
    assert models == {"m0", "m1", "m2", "other"}


def test_live_state_is_read_at_each_scrape() -> None:
    state = [LiveState(writer_queue_depth=3, spool_bytes=10, records_written=7)]
    m = GatewayMetrics(lambda: state[0])
    assert value(m, "tollkeeper_writer_queue_depth") == 3
    state[0] = LiveState(
        records_written=9, real_keys=(("openai", "main", "healthy"), ("openai", "b", "cooling"))
    )
    assert value(m, "tollkeeper_records_written_total") == 9
    assert (
        value(m, "tollkeeper_real_key_healthy", provider="openai", label="b", state="cooling") == 0
    )
    assert (
        value(m, "tollkeeper_real_key_healthy", provider="openai", label="main", state="healthy")
        == 1
    )


def test_gateway_overhead_is_a_histogram_per_provider() -> None:
    m = GatewayMetrics()
    m.observe_overhead("openai", 0.0003)
    m.observe_overhead("openai", 0.02)
    m.observe_overhead("openai", -0.001)  # clocks of the two timestamps: never negative
    name = "tollkeeper_gateway_overhead_seconds"
    assert value(m, f"{name}_count", provider="openai") == 3
    assert value(m, f"{name}_sum", provider="openai") == pytest.approx(0.0203)
    assert value(m, f"{name}_bucket", provider="openai", le="0.0005") == 2
    assert value(m, f"{name}_bucket", provider="openai", le="0.01") == 2
    assert value(m, f"{name}_bucket", provider="openai", le="+Inf") == 3
    assert value(m, f"{name}_count", provider="anthropic") is None


def test_repeated_observations_reuse_their_series() -> None:
    m = GatewayMetrics()
    for _ in range(3):
        m.observe(replace(DRAFT, forwarded=True), ROW)
    m.observe(replace(DRAFT, forwarded=True), replace(ROW, project="beta", cost_picousd=None))
    labels = {"provider": "openai", "model": "gpt-4o-mini"}
    assert value(m, "tollkeeper_tokens_total", **labels, project="alpha", type="input") == 3600
    assert value(m, "tollkeeper_tokens_total", **labels, project="beta", type="input") == 1200
    assert value(m, "tollkeeper_unpriced_requests_total", **labels) == 1
    assert value(m, "tollkeeper_cost_usd_total", **labels, project="beta") is None
