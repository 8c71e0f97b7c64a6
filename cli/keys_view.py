"""How virtual keys are shown: JSON objects, table rows and the detail view. Never a secret.

Listing takes any ``KeyRow``: the ``VirtualKey`` table or the quick read path's records
(``addon.store.quick``), which ``keys list`` uses without importing SQLAlchemy at all.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from addon.limits import Limits, period_reset
from addon.moments import utcnow
from addon.store.key_policy import KeyRow, policy_of
from cli.output import iso, print_table, short_time, usd, usd_or_none

if TYPE_CHECKING:
    from addon.store.limits_repo import KeyState
    from addon.store.models import BudgetAlert, VirtualKey


def status(row: KeyRow, now: datetime | None = None) -> str:
    now = now or utcnow()
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "active"


def key_json(row: KeyRow) -> dict[str, Any]:
    """The stable JSON shape of a key (``keys show --json``, ``keys list --json``)."""
    policy = policy_of(row)
    return {
        "id": row.id,
        "project": row.project,
        "status": status(row),
        "created_at": iso(row.created_at),
        "created_by": row.created_by,
        "expires_at": iso(row.expires_at),
        "revoked_at": iso(row.revoked_at),
        "revoked_by": row.revoked_by,
        "revoke_reason": row.revoke_reason,
        "budget_usd": usd_or_none(row.budget_picousd),
        "budget_period": row.budget_period,
        "rpm": row.rpm,
        "tpm": row.tpm,
        "max_parallel": row.max_parallel,
        "allow_unmetered": bool(row.allow_unmetered),
        "models": list(policy.allowed_models),
        "providers": list(policy.allowed_providers),
        "metadata": policy.metadata or {},
        "alert_at": list(policy.alert_at),
    }


def key_with_secret_json(row: KeyRow, secret: str) -> dict[str, Any]:
    """Shape of ``keys create --json`` and ``keys rotate --json``: the secret, once."""
    return {"id": row.id, "key": secret, **{k: v for k, v in key_json(row).items() if k != "id"}}


def budget_text(row: KeyRow) -> str:
    if row.budget_picousd is None:
        return "-"
    return f"${usd(row.budget_picousd)} {row.budget_period}"


def print_key_table(rows: Sequence[KeyRow]) -> None:
    now = utcnow()
    print_table(
        ["ID", "PROJECT", "CREATED", "EXPIRES", "STATUS", "BUDGET"],
        [
            [
                r.id,
                r.project,
                short_time(r.created_at),
                short_time(r.expires_at) if r.expires_at else "never",
                status(r, now),
                budget_text(r),
            ]
            for r in rows
        ],
    )


def limits_of(row: VirtualKey) -> Limits:
    return Limits(row.id, row.budget_picousd, row.budget_period, row.rpm, row.tpm, row.max_parallel)


def alert_json(alert: BudgetAlert) -> dict[str, Any]:
    return {
        "threshold_percent": alert.threshold_percent,
        "period_start": alert.period_start,
        "fired_at": iso(alert.fired_at),
        "spent_usd": usd(alert.spent_picousd),
        "delivery": alert.delivery,  # pending | sent | failed | no_webhook
        "attempts": alert.attempts,
        "delivered_at": iso(alert.delivered_at),
    }


def alert_text(alert: BudgetAlert) -> str:
    how = {
        "sent": "sent",
        "pending": "sending",
        "no_webhook": "no webhook set",
        "failed": f"webhook failed after {alert.attempts} tries ({alert.last_error or '?'})",
    }.get(alert.delivery, alert.delivery)
    return f"{alert.threshold_percent}% at {short_time(alert.fired_at)} UTC ({how})"


def live_json(
    row: VirtualKey, live: KeyState, now: datetime, fired: Sequence[BudgetAlert] = ()
) -> dict[str, Any]:
    """Current spend against the budget, this minute's rate counters and the budget alerts
    fired in the current period."""
    remaining = None
    if row.budget_picousd is not None:
        left = row.budget_picousd - live.spent_picousd - live.reserved_picousd
        remaining = usd(max(0, left))
    return {
        "spent_usd": usd(live.spent_picousd),
        "reserved_usd": usd(live.reserved_picousd),
        "remaining_usd": remaining,
        "period_resets_at": iso(period_reset(row.budget_period, now)),
        "in_flight": live.inflight,
        "requests_this_minute": live.minute_requests,
        "tokens_this_minute": live.minute_tokens,
        "alerts_fired": [alert_json(a) for a in fired],
    }


def print_key_details(
    row: VirtualKey, live: KeyState, now: datetime, fired: Sequence[BudgetAlert] = ()
) -> None:
    data = key_json(row)
    extra = live_json(row, live, now, fired)
    lines = [
        ("id", row.id),
        ("project", row.project),
        ("status", data["status"]),
        ("created", f"{short_time(row.created_at)} UTC by {row.created_by or '-'}"),
        ("expires", f"{short_time(row.expires_at)} UTC" if row.expires_at else "never"),
    ]
    if row.revoked_at is not None:
        reason = f" ({row.revoke_reason})" if row.revoke_reason else ""
        lines.append(
            ("revoked", f"{short_time(row.revoked_at)} UTC by {row.revoked_by or '-'}{reason}")
        )
    lines += [
        ("budget", budget_text(row)),
        ("spent", f"${extra['spent_usd']} (+${extra['reserved_usd']} in flight)"),
        (
            "resets",
            f"{short_time(period_reset(row.budget_period, now))} UTC"
            if row.budget_period != "total"
            else "never",
        ),
        ("alerts at", ", ".join(f"{t}%" for t in data["alert_at"]) or "-"),
    ]
    if data["alert_at"] or fired:
        lines.append(("alerts fired", "; ".join(map(alert_text, fired)) or "none this period"))
    lines += [
        ("rpm", _or_dash(row.rpm)),
        ("tpm", _or_dash(row.tpm)),
        ("max parallel", _or_dash(row.max_parallel)),
        ("unmetered", "allowed" if row.allow_unmetered else "refused when limited"),
        ("models", ", ".join(data["models"]) or "any"),
        ("providers", ", ".join(data["providers"]) or "any"),
        ("metadata", json.dumps(data["metadata"], sort_keys=True)),
    ]
    width = max(len(name) for name, _ in lines)
    for name, value in lines:
        click.echo(f"{name + ':':<{width + 1}} {value}")


def _or_dash(value: int | None) -> str:
    return "-" if value is None else str(value)
