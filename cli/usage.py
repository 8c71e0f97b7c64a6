"""``tollkeeper usage``: requests, tokens and cost, grouped by project, key, model, provider or day.

Costs are exact decimal strings. Usage of models without a known price is counted apart
(``unpriced_*``) and never shown as $0.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from addon.store import usage_repo
from cli.context import App, UserError, pass_app
from cli.output import note, print_csv, print_json, print_table, usd
from cli.parse import SINCE, UNTIL

GROUP_FIELDS = usage_repo.GROUPS  # --by value → field name in the output
COUNT_FIELDS = (
    "requests",
    *usage_repo.TOKEN_FIELDS,
)
TAIL_FIELDS = (
    "unpriced_requests",
    "unpriced_input_tokens",
    "unpriced_output_tokens",
    "estimated_requests",
    "error_requests",
)


def usage_json(row: dict[str, Any], group_field: str) -> dict[str, Any]:
    """One group in the stable JSON/CSV shape."""
    out: dict[str, Any] = {group_field: row[group_field]}
    out.update({f: int(row[f]) for f in COUNT_FIELDS})
    out["cost_usd"] = usd(int(row["cost_picousd"]))
    out.update({f: int(row[f]) for f in TAIL_FIELDS})
    return out


def _cost_cell(item: dict[str, Any]) -> str:
    if item["requests"] > 0 and item["unpriced_requests"] == item["requests"]:
        return "unpriced"
    return f"${item['cost_usd']}"


def _unpriced_cell(item: dict[str, Any]) -> str:
    if not item["unpriced_requests"]:
        return "-"
    return (
        f"{item['unpriced_requests']} req, {item['unpriced_input_tokens']:,} in"
        f" / {item['unpriced_output_tokens']:,} out tok"
    )


def fields(group_field: str) -> list[str]:
    """Column order of the JSON objects and the CSV."""
    return [group_field, *COUNT_FIELDS, "cost_usd", *TAIL_FIELDS]


def _total(rows: list[dict[str, Any]], group_field: str) -> dict[str, Any]:
    sums = {f: sum(int(r[f]) for r in rows) for f in (*COUNT_FIELDS, "cost_picousd", *TAIL_FIELDS)}
    return usage_json({group_field: "TOTAL", **sums}, group_field)


def _print_usage_table(items: list[dict[str, Any]], group_field: str) -> None:
    headers = [group_field.upper(), "REQUESTS", "INPUT", "CACHED", "CACHE WRITE", "OUTPUT"]
    headers += ["REASONING", "COST (USD)", "UNPRICED", "ESTIMATED", "ERRORS"]
    rows = []
    for i in items:
        rows.append(
            [
                "(none)" if i[group_field] is None else i[group_field],
                f"{i['requests']:,}",
                f"{i['input_tokens']:,}",
                f"{i['cached_input_tokens']:,}",
                f"{i['cache_write_tokens']:,}",
                f"{i['output_tokens']:,}",
                f"{i['reasoning_tokens']:,}",
                _cost_cell(i),
                _unpriced_cell(i),
                i["estimated_requests"],
                i["error_requests"],
            ]
        )
    print_table(headers, rows)


@click.command()
@click.option(
    "--by",
    type=click.Choice(list(GROUP_FIELDS)),
    default="project",
    show_default=True,
    help="How to group.",
)
@click.option("--since", type=SINCE, help="From this date/time (UTC), inclusive.")
@click.option("--until", type=UNTIL, help="Up to this date (inclusive) or time (exclusive), UTC.")
@click.option("--project", help="Only this project.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@pass_app
def usage(
    app: App,
    by: str,
    since: datetime | None,
    until: datetime | None,
    project: str | None,
    fmt: str,
    as_json: bool,
) -> None:
    """Report usage and cost from the gateway's usage records.

    COST is the exact sum over requests with a known price; requests for models without a
    price are counted under UNPRICED (with their tokens), never as $0. JSON and CSV have one
    row per group: the group (project, key_id, model, provider or day), requests, token sums,
    cost_usd (an exact decimal string) and the unpriced, estimated and error counts.
    """
    if since is not None and until is not None and since >= until:
        raise UserError("--since must be before --until")
    with app.session() as session:
        rows = usage_repo.report(session=session, by=by, since=since, until=until, project=project)
    group_field = GROUP_FIELDS[by]
    items = [usage_json(r, group_field) for r in rows]
    if as_json or fmt == "json":
        print_json(items)
    elif fmt == "csv":
        columns = fields(group_field)
        print_csv(columns, [[i[c] for c in columns] for i in items])
    elif not items:
        note("No usage in this period.")
    else:
        _print_usage_table([*items, _total(rows, group_field)], group_field)
