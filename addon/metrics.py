"""Prometheus metrics of one gateway process (``prometheus_client``, a registry of its own).

Names follow the OpenTelemetry GenAI semantic conventions where one fits —
``gen_ai_client_token_usage`` (tokens per request by ``gen_ai_token_type`` input/output),
``gen_ai_client_operation_duration_seconds`` and ``gen_ai_server_time_to_first_token_seconds``
— and use ``tollkeeper_*`` for the rest. Every request that reached the gateway is observed
once, from its finished usage record (estimates and cost included), in the writer thread;
the gateway's own overhead (``tollkeeper_gateway_overhead_seconds``: the request's time in
the proxy minus the time the upstream took) is observed by the response hook, which knows
when the request left for the upstream.

No label carries a secret: the labels are provider, model, status, project, token type,
rejection code and real-key label. A hostile upstream could invent model names without end,
so each label keeps at most ``MAX_LABEL_VALUES`` values; later ones are counted as ``other``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from addon.records import UsageDraft
from addon.store.rows import UsageRow

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_LABEL_VALUES = 500
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)
SECONDS_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 81.92)
PICOUSD_PER_USD = 10**12
TOKEN_TYPES = ("input", "cached_input", "cache_write", "output", "reasoning")


@dataclass(frozen=True)
class LiveState:
    """What the gateway is like right now, read at each scrape."""

    writer_queue_depth: int = 0
    spool_bytes: int = 0
    records_written: int = 0
    real_keys: tuple[tuple[str, str, str], ...] = ()  # (provider, label, health status)


@dataclass
class _Bounded:
    """Keeps a label's distinct values at a bound (a guard against unbounded series)."""

    seen: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, value: str) -> str:
        with self.lock:
            if value in self.seen:
                return value
            if len(self.seen) >= MAX_LABEL_VALUES:
                return "other"
            self.seen.add(value)
            return value


class GatewayMetrics:
    def __init__(self, live: Callable[[], LiveState] | None = None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._model, self._project = _Bounded(), _Bounded()
        self.requests = Counter(
            "tollkeeper_requests",
            "Requests that reached the gateway, by provider, model, status and project",
            ["provider", "model", "status", "project"],
            registry=r,
        )
        self.tokens = Counter(
            "tollkeeper_tokens",
            "Tokens metered (input includes cached and cache writes, output includes reasoning)",
            ["provider", "model", "project", "type"],
            registry=r,
        )
        self.token_usage = Histogram(
            "gen_ai_client_token_usage",
            "Tokens per request (OpenTelemetry gen_ai.client.token.usage)",
            ["gen_ai_system", "gen_ai_request_model", "gen_ai_token_type"],
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.cost = Counter(
            "tollkeeper_cost_usd",
            "Cost of priced requests in USD (unpriced ones in tollkeeper_unpriced_requests)",
            ["provider", "model", "project"],
            registry=r,
        )
        self.unpriced = Counter(
            "tollkeeper_unpriced_requests",
            "Forwarded requests the gateway could not price",
            ["provider", "model"],
            registry=r,
        )
        self.rejections = Counter(
            "tollkeeper_rejections",
            "Requests the gateway answered itself, by code (invalid_key, budget_exceeded, ...)",
            ["code"],
            registry=r,
        )
        self.duration = Histogram(
            "gen_ai_client_operation_duration_seconds",
            "Duration of forwarded requests (OpenTelemetry gen_ai.client.operation.duration)",
            ["gen_ai_system", "gen_ai_request_model"],
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "gen_ai_server_time_to_first_token_seconds",
            "Time to the first response byte of streamed requests",
            ["gen_ai_system", "gen_ai_request_model"],
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.overhead = Histogram(
            "tollkeeper_gateway_overhead_seconds",
            "Time a forwarded request spent in the gateway: total time minus upstream time",
            ["provider"],
            buckets=OVERHEAD_BUCKETS,
            registry=r,
        )
        self._children: dict[tuple[object, tuple[str, ...]], Any] = {}
        if live is not None:
            r.register(_LiveCollector(live))

    def _child(self, metric: Counter | Histogram, *labels: str) -> Any:
        """``metric.labels(*labels)``, remembered: ``labels()`` costs microseconds, and the
        writer thread (which shares the GIL with the proxy) needs about ten per record."""
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def observe_overhead(self, provider: str, seconds: float) -> None:
        """One forwarded request's time in the gateway, upstream time excluded."""
        self._child(self.overhead, provider).observe(max(0.0, seconds))

    def observe(self, draft: UsageDraft, row: UsageRow) -> None:
        """One finished request (call once per usage record)."""
        model = self._model(row.model or "unknown")
        project = self._project(row.project or "")
        status = str(row.status_code) if row.status_code is not None else "none"
        self._child(self.requests, row.provider, model, status, project).inc()
        if not draft.forwarded:
            if row.error_kind:
                self._child(self.rejections, row.error_kind).inc()
            return
        child, provider = self._child, row.provider
        counts = (
            row.input_tokens,
            row.cached_input_tokens,
            row.cache_write_tokens,
            row.output_tokens,
            row.reasoning_tokens,
        )
        for kind, count in zip(TOKEN_TYPES, counts, strict=True):
            if count > 0:
                child(self.tokens, provider, model, project, kind).inc(count)
        child(self.token_usage, provider, model, "input").observe(max(0, row.input_tokens))
        child(self.token_usage, provider, model, "output").observe(max(0, row.output_tokens))
        if row.cost_picousd is None:
            child(self.unpriced, provider, model).inc()
        elif row.cost_picousd > 0:
            child(self.cost, provider, model, project).inc(row.cost_picousd / PICOUSD_PER_USD)
        if row.latency_ms is not None:
            child(self.duration, provider, model).observe(row.latency_ms / 1000)
        if row.streamed and row.ttfb_ms is not None:
            child(self.ttft, provider, model).observe(row.ttfb_ms / 1000)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _LiveCollector(Collector):
    def __init__(self, live: Callable[[], LiveState]) -> None:
        self._live = live

    def collect(self) -> list[GaugeMetricFamily | CounterMetricFamily]:  # type: ignore[override]
        state = self._live()
        health = GaugeMetricFamily(
            "tollkeeper_real_key_healthy",
            "1 when a real key is usable, 0 when cooling or disabled (state in the label)",
            labels=["provider", "label", "state"],
        )
        for provider, label, status in state.real_keys:
            health.add_metric([provider, label, status], 1.0 if status == "healthy" else 0.0)
        written = CounterMetricFamily(
            "tollkeeper_records_written", "Usage records written to the database"
        )
        written.add_metric([], float(state.records_written))
        return [
            GaugeMetricFamily(
                "tollkeeper_writer_queue_depth",
                "Usage records waiting for the writer",
                value=state.writer_queue_depth,
            ),
            GaugeMetricFamily(
                "tollkeeper_spool_bytes",
                "Bytes of records spooled locally, waiting for the database",
                value=state.spool_bytes,
            ),
            written,
            health,
        ]
