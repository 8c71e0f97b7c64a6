"""mitmproxy options the gateway needs, set before the listeners accept connections."""

from __future__ import annotations

import logging

from mitmproxy import ctx

from addon.hooks.shared import Shared
from addon.providers.registry import BUILTIN

log = logging.getLogger(__name__)


class ProxyDefaults:
    """``connection_strategy=lazy`` (the gateway reroutes before connecting) and, unless
    the operator chose ``allow_hosts`` or ``ignore_hosts``, ``allow_hosts`` = the provider
    hosts, kept up to date when providers are defined or removed."""

    name = "tollkeeper-proxy-defaults"

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self._managed_hosts: list[str] | None = None  # allow_hosts as the gateway set it
        shared.registry_listeners.append(self._registry_changed)

    def configure(self, updated: set[str]) -> None:
        opts = ctx.options
        if "connection_strategy" in updated and opts.connection_strategy != "lazy":
            log.warning("tollkeeper: setting connection_strategy=lazy (needed to reroute)")
            opts.update(connection_strategy="lazy")
        user_chose = (opts.allow_hosts and opts.allow_hosts != self._managed_hosts) or (
            opts.ignore_hosts
        )
        if {"allow_hosts", "ignore_hosts"} & updated and not user_chose:
            self._set_allow_hosts()

    def _set_allow_hosts(self) -> None:
        runtime = self.shared.runtime
        registry = runtime.cache.registry if runtime is not None else BUILTIN
        self._managed_hosts = registry.allow_hosts_patterns()
        if list(ctx.options.allow_hosts) != self._managed_hosts:
            ctx.options.update(allow_hosts=self._managed_hosts)

    def _registry_changed(self) -> None:
        if self._managed_hosts is not None:  # else the operator manages the host options
            self._set_allow_hosts()
