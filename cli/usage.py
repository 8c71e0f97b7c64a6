"""``tollkeeper usage``: requests, tokens and cost, grouped by project, key, model, provider or day.

Costs are exact decimal strings. Usage without a known price (an unknown model, an endpoint
the gateway does not meter) is counted apart (``unpriced_*``) and never shown as $0: a group
with no priced request has ``cost_usd: null`` in JSON, ``unpriced`` in CSV and the table.
``tollkeeper usage reprice`` recomputes stored costs at the current prices.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from addon.store import quick_report
from addon.store.report_fields import (
    ATTRIBUTION_GROUPS,
    COUNT_FIELDS,
    GROUPS,
    TAIL_FIELDS,
    report_item,
    total_item,
)
from cli.context import App, UserError, pass_app
from cli.lazy import LazyCommands
from cli.output import format_option, iso, note, print_csv, print_json, print_table, usd
from cli.parse import SINCE, UNTIL, period_options

if TYPE_CHECKING:
    from addon.store.reprice import RepriceSummary

# --by value → field name in the output; user and tag are read from the raw records
GROUP_FIELDS = {**GROUPS, **ATTRIBUTION_GROUPS}


def _cost_cell(item: dict[str, Any]) -> str:
    if item["cost_usd"] is None:
        return "unpriced"
    if item["unpriced_requests"]:
        return f"${item['cost_usd']} + unpriced"
    return f"${item['cost_usd']}"


def _csv_cell(item: dict[str, Any], column: str) -> Any:
    return "unpriced" if column == "cost_usd" and item[column] is None else item[column]


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


@click.group(invoke_without_command=True, subcommand_metavar="[COMMAND [ARGS]...]")
@click.option(
    "--by",
    type=click.Choice(list(GROUP_FIELDS)),
    default="project",
    show_default=True,
    help="How to group.",
)
@period_options
@click.option("--project", help="Only this project.")
@format_option
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.pass_context
def usage(
    ctx: click.Context,
    by: str,
    since: datetime | None,
    until: datetime | None,
    project: str | None,
    fmt: str,
    as_json: bool,
) -> None:
    """Report usage and cost from the gateway's usage records.

    COST is the exact sum over requests with a known price; requests without one (a model
    without a price, an endpoint the gateway does not meter) are counted under UNPRICED
    (with their tokens), never as $0. JSON and CSV have one row per group: the group
    (project, key_id, model, provider or day), requests, token sums, cost_usd (an exact
    decimal string; null in JSON and "unpriced" in CSV when no request of the group has a
    price) and the unpriced, estimated and error counts.

    --by user groups by the end user a client named (the x-tollkeeper-user header, else the
    OpenAI "user" field of the request); --by tag by the x-tollkeeper-tags it sent. A
    request with tags a,b counts fully under a and under b, so the tag rows add up to more
    than the total. Requests without a user or tags are the "(none)" row (null in JSON).

    The report reads hourly rollups (UTC hours) that the gateway keeps with the records; a
    --since or --until inside an hour is still exact, that partial hour being summed from
    the raw records (after 'usage prune', a partial hour before the cutoff counts nothing).

    After a price change, 'tollkeeper usage reprice' recomputes the stored costs.
    """
    if ctx.invoked_subcommand is not None:
        _refuse_report_options(ctx)
        return
    app = ctx.ensure_object(App)
    if since is not None and until is not None and since >= until:
        raise UserError("--since must be before --until")
    rows = _report(app, by=by, since=since, until=until, project=project)
    group_field = GROUP_FIELDS[by]
    items = [report_item(r, group_field) for r in rows]
    if as_json or fmt == "json":
        print_json(items)
    elif fmt == "csv":
        columns = fields(group_field)
        print_csv(columns, [[_csv_cell(i, c) for c in columns] for i in items])
    elif not items:
        note("No usage in this period.")
    elif by == "tag":  # a request counts under each of its tags: a total would overcount
        _print_usage_table(items, group_field)
        note("A request with several tags counts fully under each of them.")
    else:
        _print_usage_table([*items, total_item(rows, group_field, "TOTAL")], group_field)


def _report(
    app: App, *, by: str, since: datetime | None, until: datetime | None, project: str | None
) -> list[dict[str, Any]]:
    """The report's rows: from the quick read when it can answer (no SQLAlchemy to import),
    else from the store, which migrates first and reports its errors."""
    url = app.settings.db_url
    rows = quick_report.report(url, by=by, since=since, until=until, project=project)
    if rows is not None:
        return rows
    from addon.store import attribution_repo, usage_repo

    store_report = attribution_repo.report if by in ATTRIBUTION_GROUPS else usage_repo.report
    with app.session() as session:
        return store_report(session=session, by=by, since=since, until=until, project=project)


def _refuse_report_options(ctx: click.Context) -> None:
    """Report options given before a subcommand would be silently ignored: refuse them."""
    for param in ctx.command.params:
        if param.name and ctx.get_parameter_source(param.name) is not ParameterSource.DEFAULT:
            raise click.UsageError(
                f"{param.opts[0]} belongs to the usage report, not to"
                f" '{ctx.invoked_subcommand}'; give options after the command name.",
                ctx=ctx,
            )


# the subcommands' modules are imported only when one runs (the report needs none of them)
usage.commands = LazyCommands(
    {
        "log": "cli.usage_log:log",
        "prune": "cli.usage_rollups:prune",
        "rebuild": "cli.usage_rollups:rebuild",
    }
)


@usage.command(name="reprice")
@click.option("--since", type=SINCE, help="Only records from this date/time (UTC), inclusive.")
@click.option(
    "--until", type=UNTIL, help="Only records up to this date (inclusive) or time (exclusive)."
)
@click.option(
    "--model",
    "pattern",
    metavar="GLOB",
    help="Only records whose model matches this glob (case-insensitive).",
)
@click.option("--dry-run", is_flag=True, help="Count what would change; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as a JSON object.")
@pass_app
def reprice_(
    app: App,
    since: datetime | None,
    until: datetime | None,
    pattern: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Recompute the cost of stored usage records at the current prices.

    Each record's cost is computed again from its tokens with the bundled table plus your
    overrides ('tollkeeper prices'): unpriced records get a cost once their model has a
    price, priced ones follow a changed price. A record whose model has no price now is left
    as it is: an unpriced one stays unpriced, never $0. The spend that key budgets count
    moves with the costs. Works in batches of 1000 records, one transaction each; running it
    again with the same prices changes nothing. Audited as usage.repriced.

    The summary counts the records examined, repriced (newly priced among them), unchanged,
    still unpriced and kept without a price, and the total cost of the priced ones before and
    after, as exact decimal USD strings (cost_before_usd, cost_after_usd in --json).
    """
    if since is not None and until is not None and since >= until:
        raise UserError("--since must be before --until")
    glob = pattern.strip() if pattern is not None else None
    if glob == "":
        raise UserError("--model must not be empty")
    from addon.store import prices_repo
    from addon.store.reprice import reprice
    from cli.prices import price_book

    with app.session() as session:
        book = price_book(prices_repo.list_overrides(session=session))
        summary = reprice(
            session=session,
            book=book,
            actor=app.actor,
            since=since,
            until=until,
            model_glob=glob,
            dry_run=dry_run,
        )
    if as_json:
        print_json(summary_json(summary, since, until, glob, dry_run))
        return
    _print_summary(summary)
    if dry_run:
        note("Dry run: nothing was changed.")


def summary_json(
    summary: RepriceSummary,
    since: datetime | None,
    until: datetime | None,
    glob: str | None,
    dry_run: bool,
) -> dict[str, Any]:
    """The stable JSON shape of a reprice summary."""
    out: dict[str, Any] = {"dry_run": dry_run, "since": iso(since), "until": iso(until)}
    out["model"] = glob
    out.update({k: v for k, v in summary.counts().items() if not k.endswith("_picousd")})
    out["cost_before_usd"] = usd(summary.cost_before_picousd)
    out["cost_after_usd"] = usd(summary.cost_after_picousd)
    return out


def _print_summary(s: RepriceSummary) -> None:
    lines = [
        ("Records examined", f"{s.examined:,}"),
        ("Repriced", f"{s.repriced:,} ({s.newly_priced:,} newly priced)"),
        ("Unchanged", f"{s.unchanged:,}"),
        ("Still unpriced", f"{s.still_unpriced:,}"),
        ("Kept, no price now", f"{s.kept_without_price:,}"),
        ("Key budget days adjusted", f"{s.spend_days_adjusted:,}"),
        ("Cost before (USD)", usd(s.cost_before_picousd)),
        ("Cost after (USD)", usd(s.cost_after_picousd)),
    ]
    width = max(len(label) for label, _ in lines) + 2
    for label, value in lines:
        click.echo(f"{label + ':':<{width}}{value}")
