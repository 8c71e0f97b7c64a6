"""Refuses mitmproxy options that would write a real key somewhere people can read it.

``proxy_debug`` makes mitmproxy's proxy core log every command of every layer, including
``SendData`` with the request bytes as sent upstream, where ``addon.keywire`` has just
written the real key. There is no safe way to redact that log (it is built from reprs deep
inside mitmproxy), so the gateway refuses the option, at startup and at runtime.
"""

from __future__ import annotations

from typing import Any

from mitmproxy import ctx, exceptions

REFUSED = {
    "proxy_debug": "it logs the bytes sent upstream, real keys included",
}


class SecretGuard:
    name = "tollkeeper_secret_guard"

    def configure(self, updated: set[str]) -> None:
        for option in sorted(updated & REFUSED.keys()):
            if _is_on(getattr(ctx.options, option, None)):
                message = f"tollkeeper: {option} is not allowed with the gateway: {REFUSED[option]}"
                raise exceptions.OptionsError(message)  # type: ignore[no-untyped-call]


def _is_on(value: Any) -> bool:
    return bool(value)
