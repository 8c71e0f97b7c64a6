"""The dashboard's tables as HTML, every value escaped (names come from clients and upstreams).

Each row and cell carries ``data-*`` attributes naming what it holds (``data-project``,
``data-field="cost_usd"``), so a reader (or a test) can find a number without parsing text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape
from typing import Any

Link = Callable[[str, str | None], str]  # (field, value) -> href, "" for none

NONE = "(none)"


def money(value: str | None) -> str:
    return "unpriced" if value is None else f"${value}"


def count(value: int) -> str:
    return f"{value:,}"


def percent(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.1f}%"


def cell(field: str, text: str, *, href: str = "", after: str = "") -> str:
    """One cell; ``after`` is trusted HTML put behind the escaped text."""
    body = escape(text)
    if href:
        body = f'<a href="{escape(href)}">{body}</a>'
    body += after
    return f'<td data-field="{escape(field)}">{body}</td>'


def table(
    name: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[dict[str, Any]],
    *,
    key: str,
    fmt: Callable[[str, Any], str],
    link: Link | None = None,
) -> str:
    """A table of ``rows`` (dicts); ``columns`` are (field, heading); ``key`` names each row."""
    head = "".join(f"<th>{escape(title)}</th>" for _, title in columns)
    body = []
    for row in rows:
        ident = "" if row.get(key) is None else str(row[key])
        cells = []
        for field, _ in columns:
            value = row.get(field)
            href = link(field, value) if link and field in ("project", "key_id") else ""
            after = (
                budget_bar(float(value)) if field == "used_percent" and value is not None else ""
            )
            href = href if value is not None else ""
            cells.append(cell(field, fmt(field, value), href=href, after=after))
        body.append(f'<tr data-{escape(key)}="{escape(ident)}">{"".join(cells)}</tr>')
    if not body:
        span = len(columns)
        body.append(f'<tr class="empty"><td colspan="{span}">Nothing in this period.</td></tr>')
    return (
        f'<table id="{escape(name)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def fmt_value(field: str, value: Any) -> str:
    """How a value is written in any table."""
    if field.endswith("_usd"):
        return money(value)
    if value is None:
        return NONE if field in ("project", "key_id", "model") else "-"
    if field.endswith("_rate"):
        return percent(value)
    if field == "used_percent":
        return f"{value}%"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) and field not in ("status",):
        return count(value)
    return str(value)


def budget_bar(percent_used: float) -> str:
    width = max(0.0, min(100.0, percent_used))
    level = "over" if percent_used >= 100 else "high" if percent_used >= 80 else "ok"
    return (
        f'<div class="bar {level}" role="meter" aria-valuenow="{percent_used}">'
        f'<span style="width:{width}%"></span></div>'
    )
