"""Output helpers shared by the commands: JSON, aligned tables, CSV, times and money.

Data goes to stdout; explanations go to stderr through ``note``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import click

from addon.moments import iso_or_none
from addon.pricing.cost import usd_text

FORMATS = ("table", "json", "csv")


def format_option[F: Callable[..., Any]](command: F) -> F:
    """The ``--format table|json|csv`` option of a listing (passed as ``fmt``)."""
    option = click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="Output format.",
    )
    return option(command)


def note(message: str) -> None:
    """An explanation for the person at the terminal (stderr, never parsed)."""
    click.echo(message, err=True)


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Left-aligned columns separated by two spaces; no trailing blanks."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def print_csv(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(["" if c is None else c for c in r] for r in rows)
    click.echo(buf.getvalue(), nl=False)


def iso(moment: datetime | None) -> str | None:
    """A UTC time for JSON: ``2025-01-31T12:00:00Z``."""
    return iso_or_none(moment)


def short_time(moment: datetime | None, *, seconds: bool = False) -> str:
    """A UTC time for tables: ``2025-01-31 12:00`` (or ``12:00:05`` with ``seconds``)."""
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def usd(picousd: int) -> str:
    """Exact decimal USD string from picodollars, at least two decimals: ``0.50``, ``0.000123``."""
    return usd_text(picousd)


def usd_or_none(picousd: int | None) -> str | None:
    return None if picousd is None else usd(picousd)
