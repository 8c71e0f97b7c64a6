"""What a stream meter has learnt so far, shared by the per-provider event handlers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from addon.metering.normalise import load_json
from addon.metering.usage import MeterResult, Usage


class StreamState:
    """What has been learnt from a stream so far."""

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.model: str | None = None
        self.provider_request_id: str | None = None  # only where the body carries it (Gemini)
        self.error_kind: str | None = None
        self.text: list[str] = []
        self.extras: dict[str, Any] = {}
        self.bad_events = 0
        self.finished = False  # the dialect's end-of-stream event arrived
        self.usage_final = False  # usage came with or after an error: it covers the exchange

    def load(self, data: str) -> Mapping[str, Any] | None:
        """The event's JSON object, or None (counted as a bad event) when it is not one."""
        try:
            obj = load_json(data)
        except ValueError:
            obj = None
        if not isinstance(obj, Mapping):
            self.bad_events += 1
            return None
        return obj

    def error(self, kind: str) -> None:
        if self.error_kind is None:  # the first error is the cause; keep it
            self.error_kind = kind

    def add_text(self, value: object) -> None:
        if isinstance(value, str) and value:
            self.text.append(value)

    def result(self) -> MeterResult:
        extras = dict(self.extras)
        if self.bad_events:
            extras["bad_events"] = self.bad_events
        return MeterResult(
            usage=self.usage,
            model=self.model,
            provider_request_id=self.provider_request_id,
            error_kind=self.error_kind,
            usage_final=self.usage_final,
            streamed=True,
            finished=self.finished,
            output_text="".join(self.text),
            extras=extras,
        )
