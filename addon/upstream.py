"""Where a request goes upstream, and a cheap reachability probe.

mitmproxy answers a failed upstream connection with its own HTML 502 and has no response
timeout, so the gateway checks, before forwarding, that an upstream it has not heard from
for ``FRESH_S`` seconds accepts TCP connections, and answers a provider-shaped 502/504
itself when it does not. A busy upstream is never probed (every answer refreshes it).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

FRESH_S = 30.0
PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path_prefix: str


def parse_base_url(url: str) -> Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) base URL: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return Target(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))


def upstream_path(path: str, default_prefix: str, target_prefix: str) -> str:
    """Map a client path (``/v1/chat/completions``) onto the target's path prefix."""
    if default_prefix and path.startswith(default_prefix):
        path = path[len(default_prefix) :]
    return target_prefix + path


class UpstreamProbe:
    def __init__(self) -> None:
        self._seen: dict[tuple[str, int], float] = {}

    def saw_answer(self, host: str, port: int) -> None:
        self._seen[(host, port)] = time.monotonic()

    def forget(self, host: str, port: int) -> None:
        self._seen.pop((host, port), None)

    async def check(self, host: str, port: int) -> str | None:
        """None if reachable, else "unreachable" or "timeout"."""
        last = self._seen.get((host, port))
        if last is not None and time.monotonic() - last < FRESH_S:
            return None
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), timeout=PROBE_TIMEOUT_S
            )
        except TimeoutError:
            return "timeout"
        except OSError:
            return "unreachable"
        writer.close()
        self.saw_answer(host, port)
        return None
