"""Per-flow state the hooks keep in memory (never in flow.metadata: it holds live objects)."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from addon.errors import GatewayError
from addon.keycache import KeyInfo, RealKeyInfo
from addon.metering.stream import StreamMeter
from addon.providers.base import Provider

REDACTED = "[tollkeeper:redacted]"


@dataclass
class FlowState:
    provider: Provider
    api: str
    endpoint: str
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started_at: float = field(default_factory=time.time)
    key: KeyInfo | None = None
    real_key: RealKeyInfo | None = None
    secret: str | None = None  # the real key, in memory only
    secret_header: str | None = None  # where the injector puts it
    secret_value: str | None = None  # the full header value carrying it
    placeholder: str | None = None  # what the flow carries instead (addon.keywire)
    model: str | None = None
    mapped_model: str | None = None  # from the real key's deployment -> model map
    injected_usage: bool = False
    meter: StreamMeter | None = None
    rejected: GatewayError | None = None
    forwarded: bool = False
    forwarded_at: float | None = None  # time.time() when the request left for the upstream
    timed_out: bool = False
    ttfb_ms: int | None = None
    upstream: tuple[str, int] | None = None
    timer: asyncio.TimerHandle | None = None
    watch: Any = None  # a StreamWatch while a response streams (duration/idle caps)
    inspector: Any = (
        None  # a buffered answer streamed to be scanned (hooks.secrets.inspect_buffered)
    )
    request_body: bytes | None = None
    end_user: str | None = None  # addon.attribution: from the header, else the body
    tags: str = ""  # addon.attribution: the stored form, "a,b"
    flow: Any = None  # the live flow, to disarm and record it at shutdown
    recorded: Any = None  # the UsageDraft submitted at the stream's end event, if it was
    result: Any = None  # the UsageDraft submitted for the flow (hooks.meter), for the comment
    ended_as: str | None = None  # hooks.meter.ANSWERED, or the error kind the flow ended with

    def stop_timers(self) -> None:
        """The upstream answered or the flow ended: no timeout, no stream watch from now."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.watch is not None:
            self.watch.cancel()
            self.watch = None
