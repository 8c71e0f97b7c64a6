"""The addon's mitmproxy options, turned into one typed, frozen config."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from addon import admin, settings
from addon.alert_sender import check_url

ALERT_WEBHOOK_ENV = "TOLLKEEPER_ALERT_WEBHOOK"

OPTION_NAMES = frozenset(
    {
        "tollkeeper_home",
        "tollkeeper_db",
        "tollkeeper_refresh_ms",
        "tollkeeper_flush_ms",
        "tollkeeper_upstream_timeout",
        "tollkeeper_probe_upstream",
        "tollkeeper_key_retry",
        "tollkeeper_max_decoded_mb",
        "tollkeeper_stream_max_s",
        "tollkeeper_stream_idle_s",
        "tollkeeper_alert_webhook",
        "tollkeeper_alert_retry_ms",
        "tollkeeper_reserve_output_tokens",
    }
)


@dataclass(frozen=True)
class Config:
    settings: settings.Settings
    refresh_s: float
    upstream_timeout_s: int  # 0 = no gateway-side timeout
    probe_upstream: bool
    key_retry_s: int = 30  # first backoff of a real key the provider rejected
    max_decoded_bytes: int = 64 << 20  # a response body's size once decompressed
    stream_max_s: int = 3600  # a streamed response's longest life (0 = no limit)
    stream_idle_s: int = 300  # longest quiet between two chunks of a stream (0 = no limit)
    alert_webhook: str | None = None  # where budget alerts are POSTed (None = recorded only)
    alert_retry_s: float = 1.0  # first backoff of a failed alert webhook (doubles per failure)
    reserve_output_tokens: int = 4096  # budget reserved for a request without max_tokens
    flush_s: float = 0.25  # how often the writer commits what it was handed


def declare(loader: Any) -> None:
    loader.add_option(
        "tollkeeper_admin",
        str,
        admin.DEFAULT,
        "admin listener (/healthz, /readyz, /metrics): HOST:PORT, or off; beyond loopback it "
        "needs a bearer token ($TOLLKEEPER_ADMIN_TOKEN or admin.token in the home)",
    )
    loader.add_option(
        "tollkeeper_home",
        str,
        "",
        "tollkeeper data directory (default $TOLLKEEPER_HOME or ~/.tollkeeper)",
    )
    loader.add_option(
        "tollkeeper_db", str, "", "SQLAlchemy URL (default $TOLLKEEPER_DB or SQLite in the home)"
    )
    loader.add_option(
        "tollkeeper_refresh_ms", int, 500, "how often keys and revocations are re-read (ms)"
    )
    loader.add_option(
        "tollkeeper_flush_ms",
        int,
        250,
        "how often usage records are committed to the database (ms); each commit has a fixed"
        " cost, so higher means fewer, larger transactions and records that appear later",
    )
    loader.add_option(
        "tollkeeper_upstream_timeout",
        int,
        600,
        "seconds to wait for the provider's response headers before answering 504 (0 = never)",
    )
    loader.add_option(
        "tollkeeper_probe_upstream",
        bool,
        True,
        "check that an upstream accepts connections (when idle for 30 s) to answer a clean 502",
    )
    loader.add_option(
        "tollkeeper_key_retry",
        int,
        30,
        "seconds before a real key the provider rejected is tried again (doubles per failure)",
    )

    loader.add_option(
        "tollkeeper_max_decoded_mb",
        int,
        64,
        "largest decompressed response body the gateway reads (MiB); past it the client "
        "still gets every byte, metering stops and the usage is an estimate",
    )

    loader.add_option(
        "tollkeeper_stream_max_s",
        int,
        3600,
        "seconds a streamed response may last before the gateway cuts it off (0 = no limit)",
    )
    loader.add_option(
        "tollkeeper_stream_idle_s",
        int,
        300,
        "seconds a streamed response may go without a chunk before it is cut off (0 = never)",
    )
    loader.add_option(
        "tollkeeper_reserve_output_tokens",
        int,
        4096,
        "output tokens a request of a key with a budget reserves when it sets no max_tokens "
        "(a burst then overshoots the budget by at most one request while answers stay below)",
    )

    loader.add_option(
        "tollkeeper_alert_webhook",
        str,
        "",
        "URL that budget alerts are POSTed to as JSON, Slack-compatible"
        " (default $TOLLKEEPER_ALERT_WEBHOOK; none: alerts are only recorded)",
    )
    loader.add_option(
        "tollkeeper_alert_retry_ms",
        int,
        1000,
        "first wait before a failed alert webhook is tried again (ms; doubles per failure)",
    )


def _alert_webhook(options: Any) -> str | None:
    url = options.tollkeeper_alert_webhook or os.environ.get(ALERT_WEBHOOK_ENV, "")
    if not url.strip():
        return None
    try:
        return check_url(url.strip())
    except ValueError as e:
        raise ValueError(f"tollkeeper_alert_webhook: {e}") from None


def parse(options: Any) -> Config:
    """Build the config; raises ValueError with a message fit for OptionsError."""
    if options.tollkeeper_refresh_ms < 50:
        raise ValueError("tollkeeper_refresh_ms must be at least 50")
    if not 10 <= options.tollkeeper_flush_ms <= 60_000:
        raise ValueError("tollkeeper_flush_ms must be between 10 and 60000")
    if options.tollkeeper_upstream_timeout < 0:
        raise ValueError("tollkeeper_upstream_timeout must not be negative")
    if options.tollkeeper_key_retry < 1:
        raise ValueError("tollkeeper_key_retry must be at least 1")
    if options.tollkeeper_max_decoded_mb < 1:
        raise ValueError("tollkeeper_max_decoded_mb must be at least 1")
    if options.tollkeeper_stream_max_s < 0 or options.tollkeeper_stream_idle_s < 0:
        raise ValueError("tollkeeper_stream_max_s and tollkeeper_stream_idle_s must be >= 0")
    if options.tollkeeper_alert_retry_ms < 1:
        raise ValueError("tollkeeper_alert_retry_ms must be at least 1")
    if options.tollkeeper_reserve_output_tokens < 0:
        raise ValueError("tollkeeper_reserve_output_tokens must not be negative")
    return Config(
        settings=settings.resolve(
            home=options.tollkeeper_home or None, db_url=options.tollkeeper_db or None
        ),
        refresh_s=options.tollkeeper_refresh_ms / 1000,
        upstream_timeout_s=options.tollkeeper_upstream_timeout,
        probe_upstream=options.tollkeeper_probe_upstream,
        key_retry_s=options.tollkeeper_key_retry,
        max_decoded_bytes=options.tollkeeper_max_decoded_mb << 20,
        stream_max_s=options.tollkeeper_stream_max_s,
        stream_idle_s=options.tollkeeper_stream_idle_s,
        alert_webhook=_alert_webhook(options),
        alert_retry_s=options.tollkeeper_alert_retry_ms / 1000,
        reserve_output_tokens=options.tollkeeper_reserve_output_tokens,
        flush_s=options.tollkeeper_flush_ms / 1000,
    )
