"""One cheap authenticated call with a real key (``tollkeeper providers test``): list models.

The call goes straight to the key's upstream (its ``--base-url`` or the provider's own),
ignoring ``HTTPS_PROXY`` (which may point at the gateway itself). The answer is judged by the
same provider rules the gateway uses for key health; nothing of the body is kept but its error
code, so a provider that echoes part of the key cannot make it show up here.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message

from addon.providers.base import Provider
from addon.providers.key_health import judge

MAX_BODY = 65536


@dataclass(frozen=True)
class KeyTest:
    url: str
    status: int | None  # None: no HTTP answer
    verdict: str  # ok | refused | key_rejected | rate_limited | unknown | unreachable
    reason: str | None
    latency_ms: int

    @property
    def key_works(self) -> bool:
        """The provider authenticated the key (whatever it thought of the call)."""
        return self.verdict in ("ok", "refused", "rate_limited")


def key_test_url(provider: Provider, base_url: str | None) -> str:
    base = (base_url or provider.default_base_url).rstrip("/")
    if not base:
        raise ValueError(
            f"this {provider.name} key has no --base-url, and {provider.name} has no fixed "
            "endpoint to test against"
        )
    return base + provider.test_path


def run_key_test(provider: Provider, url: str, secret: str, *, timeout_s: float) -> KeyTest:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url!r}")
    name, value = provider.auth.real_header(secret)
    headers = {name: value, "user-agent": "tollkeeper-key-test", **dict(provider.test_headers)}
    request = urllib.request.Request(url, headers=headers, method="GET")  # noqa: S310 - http(s) only
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    started = time.monotonic()
    try:
        with opener.open(request, timeout=timeout_s) as resp:
            status, body, resp_headers = resp.status, resp.read(MAX_BODY), resp.headers
    except urllib.error.HTTPError as e:
        status, body, resp_headers = e.code, e.read(MAX_BODY), e.headers
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        return KeyTest(url, None, "unreachable", _one_line(str(reason)), _ms(started))
    retry = _retry_after(resp_headers)
    answer = judge(provider.key_rejected, provider.retry_hint, status, body, retry)
    return KeyTest(url, status, answer.verdict, answer.reason, _ms(started))


def _retry_after(headers: Message | None) -> float | None:
    value = headers.get("retry-after") if headers is not None else None
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]
