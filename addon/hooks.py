"""The gateway addon: the only code that reads and changes mitmproxy flows.

Every hook that decides (auth, key swap, policy) fails closed: an unexpected exception
answers a provider-shaped 500 and is recorded, never forwarded unmetered. Every provider
request that reaches a hook ends as exactly one usage record, from ``response`` or
``error`` (or ``done`` for flows still open at shutdown).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from mitmproxy import ctx, exceptions
from sqlalchemy.exc import SQLAlchemyError

from addon import admin, options
from addon.flowstate import FlowState
from addon.guard import SecretGuard
from addon.injector import KeyInjector
from addon.providers.registry import BUILTIN
from addon.request_side import RequestSide
from addon.response_side import ResponseSide
from addon.runtime import Runtime
from addon.store.db import StoreUnavailable, describe_error
from addon.trailers import TrailerPatch
from addon.vault import VaultError

log = logging.getLogger(__name__)

# The writer, key-cache and sweeper threads share the GIL with the event loop. When the loop
# wakes for a request while one of them runs Python code, it waits up to the switch interval
# for the GIL (5 ms by default, several times per request): the periodic p99 stalls. 0.5 ms
# bounds that wait; a thread switch costs a few microseconds.
SWITCH_INTERVAL_S = 0.0005


class StartFailed(Exception):
    """The gateway cannot run with this configuration; the message is one line for the log."""


class Gateway(RequestSide, ResponseSide):
    name = "tollkeeper"

    def __init__(self) -> None:
        self.runtime: Runtime | None = None
        self.states: dict[str, FlowState] = {}
        self.injector = KeyInjector()
        self.addons = [SecretGuard()]  # child addon: refuses options that would leak keys
        self._trailers = TrailerPatch()
        self._managed_hosts: list[str] | None = None  # allow_hosts as the gateway set it
        self._loop: asyncio.AbstractEventLoop | None = None
        self.admin: admin.AdminServer | None = None
        self._failed_config: options.Config | None = None  # the last one that could not start

    # --- lifecycle -------------------------------------------------------------------

    def load(self, loader: Any) -> None:
        options.declare(loader)
        self.injector.wire.install()  # raises (mitmdump exits) if mitmproxy moved its layers
        self._trailers.install()  # HTTP/1 trailers: dropped instead of hanging the client

    def configure(self, updated: set[str]) -> None:
        self._start_runtime(updated)
        self._proxy_defaults(updated)
        if "tollkeeper_admin" in updated:
            self._check_admin_option()
            if self._loop is not None:  # running: apply the change now (else in `running`)
                self._start_admin()

    @staticmethod
    def _check_admin_option() -> tuple[str, int] | None:
        try:
            return admin.parse_address(ctx.options.tollkeeper_admin)
        except ValueError as e:
            raise exceptions.OptionsError(f"tollkeeper: {e}") from e

    def _start_admin(self) -> None:
        address = self._check_admin_option()
        if self.admin is not None:
            if self.admin.address == address:
                return
            self.admin.stop()
            self.admin = None
        if address is None or self.runtime is None:
            return
        home = self.runtime.config.settings.home
        token = admin.load_token(home, required=not admin.is_loopback(address[0]))
        try:
            self.admin = admin.AdminServer(
                address,
                token=token,
                checks=self._readiness,
                metrics=self._metrics,
                dashboard=self._dashboard,
            ).start()
        except OSError as e:  # the proxy serves on without it; say so, but not as an ERROR
            log.warning("tollkeeper: admin listener on %s:%s not started: %s", *address, e)

    def _readiness(self) -> dict[str, str]:
        runtime = self.runtime
        return runtime.readiness() if runtime is not None else {"runtime": "not started"}

    def _dashboard(self) -> admin.Dashboard | None:
        runtime = self.runtime  # looked up per request: a reload builds a new runtime
        return runtime.dashboard if runtime is not None else None

    def _metrics(self) -> bytes:
        runtime = self.runtime
        return runtime.metrics.render() if runtime is not None else b""

    def _start_runtime(self, updated: set[str]) -> None:
        if self.runtime is not None and not updated & options.OPTION_NAMES:
            return
        try:
            config = options.parse(ctx.options)
        except ValueError as e:
            raise exceptions.OptionsError(f"tollkeeper: {e}") from e
        if self.runtime is not None and self.runtime.config == config:
            return
        if self.runtime is None and config == self._failed_config:
            return  # reported once; other options changing do not make it work
        try:
            runtime = self._new_runtime(config)
        except StartFailed as e:
            if self.runtime is not None:  # a changed option: refuse it, keep serving
                raise exceptions.OptionsError(str(e)) from None
            self._failed_config = config
            log.error("%s", e)  # one line; an error at start-up makes mitmproxy exit 1
            return
        old, self.runtime = self.runtime, runtime
        if old is not None:
            old.stop()

    def _new_runtime(self, config: options.Config) -> Runtime:
        try:
            runtime = Runtime(config)
        except (StoreUnavailable, VaultError, OSError) as e:
            raise StartFailed(f"tollkeeper: cannot start: {e}") from None
        except SQLAlchemyError as e:
            raise StartFailed(f"tollkeeper: database unavailable: {describe_error(e)}") from None
        runtime.cache.on_registry_change = self._registry_changed
        try:
            runtime.start()
        except SQLAlchemyError as e:
            runtime.cache.stop()
            runtime.engine.dispose()
            raise StartFailed(f"tollkeeper: database unavailable: {describe_error(e)}") from None
        return runtime

    def _proxy_defaults(self, updated: set[str]) -> None:
        """Options the gateway needs, set before the listeners start accepting."""
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
        registry = self.runtime.cache.registry if self.runtime else BUILTIN
        self._managed_hosts = registry.allow_hosts_patterns()
        if list(ctx.options.allow_hosts) != self._managed_hosts:
            ctx.options.update(allow_hosts=self._managed_hosts)

    def _registry_changed(self) -> None:
        """From the key-cache thread: providers were defined or removed."""
        if self._managed_hosts is None or self._loop is None:
            return  # the operator manages allow_hosts / ignore_hosts
        self._loop.call_soon_threadsafe(self._set_allow_hosts)

    def running(self) -> None:
        self._loop = ctx.master.event_loop
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        self._start_admin()

    def done(self) -> None:
        for state in list(self.states.values()):
            if state.flow is not None:
                self.injector.disarm(state.flow, state)
            if state.recorded is not None:
                continue  # recorded at its stream's end event
            result = state.meter.result() if state.meter is not None else None
            self._submit(state, result=result, aborted=True, error_kind="gateway_shutdown")
        self.states.clear()
        self.injector.wire.uninstall()
        self._trailers.uninstall()
        if self.admin is not None:
            self.admin.stop()
            self.admin = None
        if self.runtime is not None:
            self.runtime.stop()
            self.runtime = None
