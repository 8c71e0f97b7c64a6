"""The admin listener (readiness, metrics, dashboard) as the ``tollkeeper_admin`` option says."""

from __future__ import annotations

import logging

from mitmproxy import ctx, exceptions

from addon import admin
from addon.hooks.shared import Shared

log = logging.getLogger(__name__)


class AdminListener:
    name = "tollkeeper-admin"

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self.server: admin.AdminServer | None = None

    def configure(self, updated: set[str]) -> None:
        if "tollkeeper_admin" in updated:
            self._address()  # a bad value is refused now, even before running
            if self.shared.loop is not None:  # running: apply the change now
                self._start()

    def running(self) -> None:
        self._start()

    def done(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    @staticmethod
    def _address() -> tuple[str, int] | None:
        try:
            return admin.parse_address(ctx.options.tollkeeper_admin)
        except ValueError as e:
            raise exceptions.OptionsError(f"tollkeeper: {e}") from e

    def _start(self) -> None:
        address = self._address()
        if self.server is not None:
            if self.server.address == address:
                return
            self.server.stop()
            self.server = None
        runtime = self.shared.runtime
        if address is None or runtime is None:
            return
        token = admin.load_token(
            runtime.config.settings.home, required=not admin.is_loopback(address[0])
        )
        try:
            self.server = admin.AdminServer(
                address,
                token=token,
                checks=self._readiness,
                metrics=self._metrics,
                dashboard=self._dashboard,
            ).start()
        except OSError as e:  # the proxy serves on without it; say so, but not as an ERROR
            log.warning("tollkeeper: admin listener on %s:%s not started: %s", *address, e)

    # looked up per request: a reload builds a new runtime
    def _readiness(self) -> dict[str, str]:
        runtime = self.shared.runtime
        return runtime.readiness() if runtime is not None else {"runtime": "not started"}

    def _dashboard(self) -> admin.Dashboard | None:
        runtime = self.shared.runtime
        return runtime.dashboard if runtime is not None else None

    def _metrics(self) -> bytes:
        runtime = self.shared.runtime
        return runtime.metrics.render() if runtime is not None else b""
