"""``tollkeeper audit``: every admin change, with time, actor and target (never a secret)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from addon.store.audit_repo import list_events
from addon.store.models import AuditEvent
from cli.context import App, pass_app
from cli.output import iso, note, print_json, print_table, short_time
from cli.parse import SINCE

# Detail fields that must never be shown, whatever wrote them.
_SECRET_WORDS = ("secret", "key", "token", "password", "ciphertext")
_SAFE_FIELDS = frozenset({"key_id"})


def safe_details(event: AuditEvent) -> dict[str, Any]:
    """The event's details with anything named like a credential redacted."""
    try:
        details = json.loads(event.details_json or "{}")
    except json.JSONDecodeError:
        return {}
    if not isinstance(details, dict):
        return {}
    return {k: "[redacted]" if _looks_secret(k) else v for k, v in details.items()}


def _looks_secret(name: str) -> bool:
    lowered = name.lower()
    return lowered not in _SAFE_FIELDS and any(w in lowered for w in _SECRET_WORDS)


def event_json(event: AuditEvent) -> dict[str, Any]:
    return {
        "at": iso(event.at),
        "actor": event.actor,
        "action": event.action,
        "target": event.target,
        "details": safe_details(event),
    }


def _details_text(details: dict[str, Any]) -> str:
    return " ".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in details.items())


@click.command()
@click.option("--since", type=SINCE, help="From this date/time (UTC), inclusive.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_app
def audit(app: App, since: datetime | None, as_json: bool) -> None:
    """Show the audit log of admin changes, oldest first.

    Keys created, updated, revoked and rotated, real keys added and removed, prices set: each
    with its time (UTC), actor and target. Never a secret.
    """
    with app.session() as session:
        events = list_events(session=session, since=since)
    if as_json:
        print_json([event_json(e) for e in events])
        return
    if not events:
        note("No audit events.")
        return
    print_table(
        ["TIME (UTC)", "ACTOR", "ACTION", "TARGET", "DETAILS"],
        [
            [
                short_time(e.at, seconds=True),
                e.actor,
                e.action,
                e.target,
                _details_text(safe_details(e)),
            ]
            for e in events
        ],
    )
