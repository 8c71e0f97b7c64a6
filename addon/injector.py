"""Puts the real key into a request at the last moment and takes it out again.

The gateway addon leaves a redacted placeholder in the request headers. This addon sits
at the *end* of mitmproxy's addon chain (added in ``running``), after the view, mitmweb
and the flow saver, so none of them ever see the real key: it writes the key in
``requestheaders`` (the request leaves right after that event) and the gateway puts the
placeholder back in its first hook after the request left (``responseheaders`` or
``error``). While a flow carries the real key, the gateway halts ``update`` events for
it, so mitmweb is not sent that state either.
"""

from __future__ import annotations

from typing import Any

from addon.flowstate import REDACTED, FlowState


class KeyInjector:
    name = "tollkeeper_injector"

    def __init__(self, states: dict[str, FlowState]) -> None:
        self._states = states
        self.armed: set[str] = set()

    def requestheaders(self, flow: Any) -> None:
        state = self._states.get(flow.id)
        if state is None or state.secret_header is None or state.secret_value is None:
            return
        if flow.response is not None or flow.error is not None:
            return
        flow.request.headers[state.secret_header] = state.secret_value
        self.armed.add(flow.id)

    def disarm(self, flow: Any, state: FlowState) -> None:
        """Replace the real key in the stored flow by the placeholder."""
        self.armed.discard(flow.id)
        if state.secret_header and state.secret_header in flow.request.headers:
            flow.request.headers[state.secret_header] = placeholder(state)


def placeholder(state: FlowState) -> str:
    label = state.real_key.label if state.real_key else "?"
    marker = f"{REDACTED} {state.provider.name}/{label}"
    bearer = state.secret_header == "authorization"  # noqa: S105 - a header name
    return f"Bearer {marker}" if bearer else marker
