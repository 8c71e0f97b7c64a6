"""The gateway addon: the only code that reads and changes mitmproxy flows.

Every hook that decides (auth, key swap, policy) fails closed: an unexpected exception
answers a provider-shaped 500 and is recorded, never forwarded unmetered. Every provider
request that reaches a hook ends as exactly one usage record, from ``response`` or
``error`` (or ``done`` for flows still open at shutdown).
"""

from __future__ import annotations

import logging
from typing import Any

from mitmproxy import ctx, exceptions

from addon import options
from addon.flowstate import FlowState
from addon.injector import KeyInjector
from addon.providers.registry import allow_hosts_patterns
from addon.request_side import RequestSide
from addon.response_side import ResponseSide
from addon.runtime import Runtime
from addon.store.db import StoreUnavailable
from addon.vault import VaultError

log = logging.getLogger(__name__)


class Gateway(RequestSide, ResponseSide):
    name = "tollkeeper"

    def __init__(self) -> None:
        self.runtime: Runtime | None = None
        self.states: dict[str, FlowState] = {}
        self.injector = KeyInjector(self.states)

    # --- lifecycle -------------------------------------------------------------------

    def load(self, loader: Any) -> None:
        options.declare(loader)

    def configure(self, updated: set[str]) -> None:
        self._proxy_defaults(updated)
        if self.runtime is not None and not updated & options.OPTION_NAMES:
            return
        try:
            config = options.parse(ctx.options)
        except ValueError as e:
            raise exceptions.OptionsError(f"tollkeeper: {e}") from e
        if self.runtime is not None and self.runtime.config == config:
            return
        try:
            runtime = Runtime(config)
        except (StoreUnavailable, VaultError, OSError) as e:
            raise exceptions.OptionsError(f"tollkeeper: {e}") from e
        runtime.start()
        old, self.runtime = self.runtime, runtime
        if old is not None:
            old.stop()

    @staticmethod
    def _proxy_defaults(updated: set[str]) -> None:
        """Options the gateway needs, set before the listeners start accepting."""
        opts = ctx.options
        if "connection_strategy" in updated and opts.connection_strategy != "lazy":
            log.warning("tollkeeper: setting connection_strategy=lazy (needed to reroute)")
            opts.update(connection_strategy="lazy")
        user_chose = opts.allow_hosts or opts.ignore_hosts
        if {"allow_hosts", "ignore_hosts"} & updated and not user_chose:
            opts.update(allow_hosts=allow_hosts_patterns())

    def running(self) -> None:
        if ctx.master.addons.get(self.injector.name) is None:
            ctx.master.addons.add(self.injector)

    def done(self) -> None:
        for state in list(self.states.values()):
            if state.flow is not None:
                self.injector.disarm(state.flow, state)
            self._submit(state, aborted=True, error_kind="gateway_shutdown")
        self.states.clear()
        if ctx.master.addons.get(self.injector.name) is not None:
            ctx.master.addons.remove(self.injector)
        if self.runtime is not None:
            self.runtime.stop()
            self.runtime = None

    def update(self, flows: Any) -> None:
        """Keep mitmweb from being sent a flow while it carries a real key."""
        armed = self.injector.armed
        if armed and any(f.id in armed for f in flows):
            raise exceptions.AddonHalt()
