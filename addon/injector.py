"""Gives each forwarded request a placeholder in place of the real key.

The flow never holds the real key: ``arm`` registers the real header value under a
placeholder with a per-request nonce and returns the placeholder, which is what the
flow carries; ``addon.keywire`` writes the real value into the request's bytes as
mitmproxy serialises them. ``disarm`` forgets the registration once the request has
left (response headers, error, rejection, shutdown), so the placeholder of a finished
flow, replayed or copied, never turns into the real key again.
"""

from __future__ import annotations

from typing import Any

from addon.flowstate import REDACTED, FlowState
from addon.keywire import Secrets, WirePatch


class KeyInjector:
    def __init__(self) -> None:
        self.secrets = Secrets()
        self.wire = WirePatch(self.secrets)

    def arm(self, state: FlowState) -> str:
        """The placeholder for the state's real header value (registered until disarmed)."""
        assert state.secret_header is not None and state.secret_value is not None
        self.disarm(None, state)
        state.placeholder = self.secrets.register(
            state.secret_header, marker(state), state.secret_value
        )
        return state.placeholder

    def disarm(self, flow: Any, state: FlowState) -> None:
        """Forget the state's registration: its placeholder is inert from now on."""
        self.secrets.forget(state.placeholder)
        state.placeholder = None


def marker(state: FlowState) -> str:
    label = state.real_key.label if state.real_key else "?"
    text = f"{REDACTED} {state.provider.name}/{label}"
    bearer = state.secret_header == "authorization"  # noqa: S105 - a header name
    return f"Bearer {text}" if bearer else text
