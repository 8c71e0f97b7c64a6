"""Start, reload and stop the gateway's runtime (store, vault, caches, writer threads)."""

from __future__ import annotations

import gc
import logging
import sys
from functools import cache
from typing import Any

from mitmproxy import ctx, exceptions
from sqlalchemy.exc import SQLAlchemyError

from addon import options
from addon.hooks.shared import Shared
from addon.runtime import Runtime
from addon.store.db import StoreUnavailable, describe_error
from addon.vault import VaultError

log = logging.getLogger(__name__)

# The writer, key-cache and sweeper threads share the GIL with the event loop. When the loop
# wakes for a request while one of them runs Python code, it waits up to the switch interval
# for the GIL (5 ms by default, several times per request): the periodic p99 stalls. 0.5 ms
# bounds that wait; a thread switch costs a few microseconds.
SWITCH_INTERVAL_S = 0.0005


class StartFailed(Exception):
    """The gateway cannot run with this configuration; the message is one line for the log."""


class RuntimeHost:
    """Declares the options and keeps one runtime built from them.

    At start-up a configuration that cannot start is logged as one error line (mitmproxy
    then exits 1); while running, a change that cannot start is refused as an option error
    and the old runtime serves on."""

    name = "tollkeeper-runtime"

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self._failed_config: options.Config | None = None  # the last one that could not start

    def load(self, loader: Any) -> None:
        options.declare(loader)

    def configure(self, updated: set[str]) -> None:
        current = self.shared.runtime
        if current is not None and not updated & options.OPTION_NAMES:
            return
        try:
            config = options.parse(ctx.options)
        except ValueError as e:
            raise exceptions.OptionsError(f"tollkeeper: {e}") from e
        if current is not None and current.config == config:
            return
        if current is None and config == self._failed_config:
            return  # reported once; other options changing do not make it work
        try:
            runtime = self._new_runtime(config)
        except StartFailed as e:
            if current is not None:  # a changed option: refuse it, keep serving
                raise exceptions.OptionsError(str(e)) from None
            self._failed_config = config
            log.error("%s", e)  # one line; an error at start-up makes mitmproxy exit 1
            return
        self.shared.runtime = runtime
        if current is not None:
            current.stop()

    def _new_runtime(self, config: options.Config) -> Runtime:
        try:
            runtime = Runtime(config)
        except (StoreUnavailable, VaultError, OSError) as e:
            raise StartFailed(f"tollkeeper: cannot start: {e}") from None
        except SQLAlchemyError as e:
            raise StartFailed(f"tollkeeper: database unavailable: {describe_error(e)}") from None
        runtime.cache.on_registry_change = self.shared.registry_changed
        try:
            runtime.start()
        except SQLAlchemyError as e:
            runtime.cache.stop()
            runtime.engine.dispose()
            raise StartFailed(f"tollkeeper: database unavailable: {describe_error(e)}") from None
        return runtime

    def running(self) -> None:
        self.shared.loop = ctx.master.event_loop
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        freeze_startup_heap()


@cache
def freeze_startup_heap() -> None:
    """Put what is alive once the gateway runs (modules, classes, SQLAlchemy's and
    mitmproxy's tables, the runtime's caches: some 160 000 objects) out of the cyclic
    collector's reach, once per process. Otherwise every full collection walks them all on
    the event loop: one took 95-150 ms in a run of 6 000 requests (a stall of every request
    in flight). Reference counting still frees them; only cycles among them would stay."""
    gc.collect()
    gc.freeze()


class Shutdown:
    """Last of the gateway's addons: stops the runtime once the others have used it in
    ``done`` (the meter's records of flows still open are in the writer's queue)."""

    name = "tollkeeper-shutdown"

    def __init__(self, shared: Shared) -> None:
        self.shared = shared

    def done(self) -> None:
        runtime, self.shared.runtime = self.shared.runtime, None
        if runtime is not None:
            runtime.stop()
