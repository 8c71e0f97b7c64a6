"""``tollkeeper report --html FILE``: the usage dashboard as one self-contained HTML file."""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import click

from addon.dashboard.data import Scope, collect
from addon.dashboard.page import render
from cli.context import App, UserError, pass_app
from cli.output import note
from cli.parse import period_options


@click.command(name="report")
@click.option(
    "--html",
    "path",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the report to this file ('-' for stdout).",
)
@period_options
@click.option("--project", help="Only this project.")
@click.option(
    "--bucket",
    type=click.Choice(["day", "hour"]),
    default="day",
    show_default=True,
    help="Time step of the charts.",
)
@pass_app
def report(
    app: App,
    path: Path,
    since: datetime | None,
    until: datetime | None,
    project: str | None,
    bucket: str,
) -> None:
    """Write the usage dashboard as one HTML file that opens offline in any browser.

    The same report the admin listener serves at /dashboard: spend and tokens per project
    over time, top models and keys, budget burn per key, error and rejection rates, real-key
    health and the latest requests (filterable by project or key). Every script and style is
    inside the file; the totals are those 'tollkeeper usage' prints for the same period.
    """
    if since is not None and until is not None and since >= until:
        raise UserError("--since must be before --until")
    scope = Scope(since=since, until=until, project=project, bucket=bucket, recent=200)
    with app.session() as session:
        data = collect(session=session, scope=scope, now=datetime.now(UTC))
    html = render(data, live=False)
    if str(path) == "-":
        click.echo(html)
        return
    _write(path, html)
    note(f"Report written to {path}")


def _write(path: Path, text: str) -> None:
    """Replace the file whole (a reader never sees half a report)."""
    target = path.expanduser()
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".report-", suffix=".html")
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror or e}") from e
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        Path(tmp).replace(target)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(f"cannot write {path}: {e.strerror or e}") from e
