"""``tollkeeper usage prune`` and ``usage rebuild``: retention of raw records, repair of rollups.

Reports read hourly rollups (``addon.store.rollups``), so deleting old raw records keeps the
reports as they were; ``usage log`` and ``usage reprice`` see only the raw records left.
"""

from __future__ import annotations

from datetime import datetime

import click

from addon.store import retention
from addon.store.report_fields import hour_of
from cli.context import App, UserError, pass_app
from cli.output import iso, note, print_json
from cli.parse import SINCE, UNTIL


@click.command(name="prune")
@click.option(
    "--before",
    type=SINCE,
    required=True,
    help="Delete the raw records created before this date/time (UTC, rounded down to the hour).",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as a JSON object.")
@pass_app
def prune(app: App, before: datetime, yes: bool, as_json: bool) -> None:
    """Delete old raw usage records; reports keep counting them.

    The hourly rollups that 'tollkeeper usage' reads keep the sums of the deleted records,
    so reports by project, key, model, provider and day stay the same. What needs the raw
    records no longer sees them: 'usage --by user|tag', 'usage log', 'usage reprice', the
    dashboard's charts and recent requests, and 'usage rebuild' (which cannot rebuild a
    pruned hour, and leaves its rollup as it is). Refused when the rollups of the hours to delete
    differ from their records (run 'usage rebuild' first). Audited as usage.pruned.
    """
    cutoff = hour_of(before)
    with app.session() as session:
        count = retention.prune_count(session, cutoff)
        session.rollback()
        if count == 0:
            _done(as_json, cutoff, 0)
            return
        if not yes:
            click.confirm(
                f"Delete {count:,} usage records created before {iso(cutoff)}? Reports keep"
                " their sums; 'usage log' and 'usage reprice' lose them for good.",
                abort=True,
                err=True,
            )
        try:
            deleted = retention.prune(session=session, actor=app.actor, before=cutoff)
        except retention.RollupsStale as e:
            raise UserError(str(e)) from e
    _done(as_json, cutoff, deleted)


def _done(as_json: bool, cutoff: datetime, deleted: int) -> None:
    if as_json:
        print_json({"before": iso(cutoff), "deleted": deleted})
    else:
        note(f"Deleted {deleted:,} usage records created before {iso(cutoff)}.")


@click.command(name="rebuild")
@click.option("--since", type=SINCE, help="From this date/time (UTC, whole hours), inclusive.")
@click.option("--until", type=UNTIL, help="Up to this date (inclusive) or time (exclusive), UTC.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as a JSON object.")
@pass_app
def rebuild(app: App, since: datetime | None, until: datetime | None, as_json: bool) -> None:
    """Recompute the hourly rollups that reports read from the raw usage records.

    For repairs and after importing records by other means than the gateway. Only hours
    that still have raw records are recomputed (the range is widened to whole UTC hours);
    an hour whose records were pruned keeps its rollup, since there is nothing left to
    rebuild it from. Safe while gateways are writing. Audited as usage.rollups_rebuilt.
    """
    if since is not None and until is not None and since >= until:
        raise UserError("--since must be before --until")
    with app.session() as session:
        s = retention.rebuild(session=session, actor=app.actor, since=since, until=until)
    if as_json:
        print_json({"hours": s.hours, "records": s.records, "kept_hours": s.kept_hours})
        return
    note(f"Rebuilt the rollups of {s.hours:,} hours from {s.records:,} records.")
    if s.kept_hours:
        note(
            f"Kept {s.kept_hours:,} hours as they were: they have no raw records left"
            " (pruned), so they cannot be rebuilt."
        )
