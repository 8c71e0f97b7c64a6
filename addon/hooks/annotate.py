"""The mitmweb view of a provider flow: project, model, tokens and cost in its comment."""

from __future__ import annotations

from mitmproxy import http

from addon.flowstate import FlowState
from addon.hooks.meter import ANSWERED
from addon.hooks.shared import Shared
from addon.metering.usage import Usage
from addon.pricing.cost import format_usd
from addon.records import UsageDraft, charge


class Annotate:
    """After the meter: a forwarded request that got its answer shows the cost its record
    gets (the record's own computation), or 'estimated later' where the writer estimates;
    one that ended in an error is marked with why. Rejections are annotated when rejected."""

    name = "tollkeeper-annotate"

    def __init__(self, shared: Shared) -> None:
        self.shared = shared

    def response(self, flow: http.HTTPFlow) -> None:
        state = self.shared.flows.get(flow)
        if state is not None and state.ended_as == ANSWERED:
            self._answered(flow, state, state.result)

    def error(self, flow: http.HTTPFlow) -> None:
        state = self.shared.flows.get(flow)
        if state is None or state.ended_as is None:
            return
        if state.ended_as == ANSWERED:
            self._answered(flow, state, state.result)
            return
        result = state.result.result if state.result is not None else None
        seen_model = result.model if result is not None else None
        seen_usage = result.usage if result is not None else None
        flow.comment = f"tollkeeper: {state.ended_as} · " + comment(
            state, seen_model or state.model, seen_usage, None, pending=seen_usage is None
        )
        flow.marked = ":warning:"

    def _answered(self, flow: http.HTTPFlow, state: FlowState, draft: UsageDraft | None) -> None:
        runtime = self.shared.runtime
        if draft is not None and runtime is not None:
            c = charge(draft, runtime.prices, estimate=False)
            flow.comment = comment(state, c.model, c.usage, c.cost_picousd, c.pending)
        else:
            flow.comment = comment(state, state.model, None, None, pending=True)
        flow.marked = ":moneybag:"


def comment(
    state: FlowState,
    model: str | None,
    usage: Usage | None,
    cost_picousd: int | None,
    pending: bool = False,
) -> str:
    """``pending``: the writer estimates the usage; the comment then names no cost."""
    project = state.key.project if state.key else "?"
    parts = [project, model or "?"]
    if pending:
        return " · ".join([*parts, "usage: estimated later"])
    if usage is not None:
        parts.append(f"{usage.input_tokens} in / {usage.output_tokens} out")
        if usage.cached_input_tokens:
            parts.append(f"{usage.cached_input_tokens} cached")
    parts.append("unpriced" if cost_picousd is None else f"${format_usd(cost_picousd)}")
    return " · ".join(parts)
