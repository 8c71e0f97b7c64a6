"""What the gateway's addons share: the per-flow table, the key injector, the runtime."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from mitmproxy import http

from addon.flowstate import FlowState
from addon.injector import KeyInjector
from addon.runtime import Runtime


class FlowTable:
    """The state of every provider flow in progress, by flow id.

    Admission adds a flow's entry; this addon, last of the gateway's flow hooks, drops it
    once the flow has ended (``response`` or ``error``), after the others have used it. A
    flow that errors after its response finds no entry: it was recorded at the response."""

    name = "tollkeeper-flows"

    def __init__(self) -> None:
        self._states: dict[str, FlowState] = {}

    def add(self, flow: http.HTTPFlow, state: FlowState) -> None:
        self._states[flow.id] = state

    def get(self, flow: http.HTTPFlow) -> FlowState | None:
        return self._states.get(flow.id)

    def __iter__(self) -> Iterator[FlowState]:
        return iter(list(self._states.values()))

    def __len__(self) -> int:
        return len(self._states)

    def response(self, flow: http.HTTPFlow) -> None:
        self._states.pop(flow.id, None)

    def error(self, flow: http.HTTPFlow) -> None:
        self._states.pop(flow.id, None)

    def done(self) -> None:
        self._states.clear()


@dataclass
class Shared:
    flows: FlowTable = field(default_factory=FlowTable)
    injector: KeyInjector = field(default_factory=KeyInjector)
    runtime: Runtime | None = None  # set by lifecycle.RuntimeHost; a reload replaces it
    loop: asyncio.AbstractEventLoop | None = None  # set once mitmproxy runs
    # called on the event loop when the key cache sees providers defined or removed
    registry_listeners: list[Callable[[], None]] = field(default_factory=list)

    def registry_changed(self) -> None:
        """From the key-cache thread: hand the change to the event loop."""
        if self.loop is None:
            return
        for listener in self.registry_listeners:
            self.loop.call_soon_threadsafe(listener)
