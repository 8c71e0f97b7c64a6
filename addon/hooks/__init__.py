"""The gateway addon: the only code that reads and changes mitmproxy flows.

``Gateway`` holds small addons in mitmproxy's own style, one concern each, in the order
mitmproxy calls them for every hook; they share one per-flow table (``hooks.shared``).
Every hook that decides (auth, key swap, policy) fails closed: an unexpected exception
answers a provider-shaped 500 and is recorded, never forwarded unmetered. Every provider
request that reaches a hook ends as exactly one usage record, from ``response`` or
``error`` (or ``done`` for flows still open at shutdown).

Script addons are children of mitmproxy's script loader, whose one ``safecall`` covers
them all: an exception escaping one hook would skip the hooks after it (the meter's
record among them). So every hook here handles its own faults.
"""

from __future__ import annotations

from typing import Any

from addon.guard import SecretGuard
from addon.hooks.admin_listener import AdminListener
from addon.hooks.admit import Admit
from addon.hooks.annotate import Annotate
from addon.hooks.lifecycle import RuntimeHost, Shutdown
from addon.hooks.meter import Meter
from addon.hooks.proxy_defaults import ProxyDefaults
from addon.hooks.secrets import KeepSecrets, ScrubAnswers
from addon.hooks.shared import FlowTable, Shared
from addon.runtime import Runtime
from addon.trailers import TrailerPatch


class Gateway:
    name = "tollkeeper"

    def __init__(self) -> None:
        self.shared = shared = Shared()
        self.addons: list[Any] = [
            SecretGuard(),  # refuses options that would leak keys
            RuntimeHost(shared),  # options; the runtime (re)built from them
            ProxyDefaults(shared),
            AdminListener(shared),
            TrailerPatch(),  # HTTP/1 trailers: dropped instead of hanging the client
            Admit(shared),
            ScrubAnswers(shared),  # before the meter reads a buffered body
            Meter(shared),
            KeepSecrets(shared),  # after the meter: wraps its stream
            Annotate(shared),
            shared.flows,  # drops a flow's state once the hooks above are done with it
            Shutdown(shared),  # stops the runtime last
        ]

    @property
    def runtime(self) -> Runtime | None:
        return self.shared.runtime

    @property
    def flows(self) -> FlowTable:
        return self.shared.flows
