"""``tollkeeper usage log``: the gateway's requests one by one, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from addon.attribution import split_tags
from addon.store.models import UsageRecord
from addon.store.usage_log_repo import LogFilter, request_log
from cli.context import App, UserError, pass_app
from cli.output import format_option, iso, note, print_csv, print_json, print_table, usd_or_none
from cli.parse import STATUS, period_options

FIELDS = (
    "time",
    "request_id",
    "key_id",
    "project",
    "provider",
    "model",
    "endpoint",
    "status",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost_usd",
    "latency_ms",
    "ttfb_ms",
    "streamed",
    "estimated",
    "error_kind",
    "provider_request_id",
    "user",
    "tags",
)


def log_json(r: UsageRecord) -> dict[str, Any]:
    """One request in the stable JSON shape (``cost_usd`` null: unpriced)."""
    return {
        "time": iso(r.created_at),
        "request_id": r.request_id,
        "key_id": r.virtual_key_id,
        "project": r.project,
        "provider": r.provider,
        "model": r.model,
        "endpoint": r.endpoint,
        "status": r.status_code,
        "input_tokens": r.input_tokens,
        "cached_input_tokens": r.cached_input_tokens,
        "cache_write_tokens": r.cache_write_tokens,
        "output_tokens": r.output_tokens,
        "reasoning_tokens": r.reasoning_tokens,
        "cost_usd": usd_or_none(r.cost_picousd),
        "latency_ms": r.latency_ms,
        "ttfb_ms": r.ttfb_ms,
        "streamed": r.streamed,
        "estimated": r.estimated,
        "error_kind": r.error_kind,
        "provider_request_id": r.provider_request_id,
        "user": r.end_user,
        "tags": split_tags(r.tags),
    }


def _csv_cell(item: dict[str, Any], name: str) -> Any:
    if name == "cost_usd" and item[name] is None:
        return "unpriced"
    return ",".join(item[name]) if name == "tags" else item[name]


def _ms(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _table_row(i: dict[str, Any]) -> list[Any]:
    return [
        i["time"].replace("T", " ").removesuffix("Z"),
        i["key_id"] or "-",
        i["project"] or "-",
        i["provider"],
        i["model"] or "-",
        i["status"] if i["status"] is not None else "-",
        f"{i['input_tokens']:,}",
        f"{i['output_tokens']:,}",
        "unpriced" if i["cost_usd"] is None else f"${i['cost_usd']}",
        _ms(i["latency_ms"]),
        _ms(i["ttfb_ms"]),
        "yes" if i["estimated"] else "",
        i["error_kind"] or "",
        i["provider_request_id"] or "",
        i["user"] or "",
        ",".join(i["tags"]),
    ]


HEADERS = ["TIME (UTC)", "KEY", "PROJECT", "PROVIDER", "MODEL", "STATUS", "INPUT", "OUTPUT"]
HEADERS += ["COST (USD)", "LATENCY MS", "TTFB MS", "EST", "ERROR", "REQUEST ID", "USER", "TAGS"]


@click.command(name="log")
@click.option("--project", help="Only this project.")
@click.option("--key", "key_id", metavar="ID", help="Only this virtual key id.")
@click.option("--model", "pattern", metavar="GLOB", help="Only models matching this glob.")
@click.option("--status", type=STATUS, help="Only this HTTP status, or 'error'.")
@period_options
@click.option(
    "--limit",
    type=click.IntRange(1, 100_000),
    default=50,
    show_default=True,
    help="At most this many requests.",
)
@format_option
@pass_app
def log(
    app: App,
    project: str | None,
    key_id: str | None,
    pattern: str | None,
    status: int | str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    fmt: str,
) -> None:
    """List requests one by one, newest first.

    Each row is one usage record: time, key, project, provider, model, HTTP status, tokens,
    cost (exact USD; "unpriced" when the model has no known price, null in JSON), latency
    and time to first byte in ms, whether the tokens are estimated, the error kind, the
    provider's request id, and the end user and tags the client named. --status error
    shows every failed request (an error kind, or a status of 400 and above); --model is a
    case-insensitive glob such as 'gpt-4o*'. JSON has every token count and 'tags' as a
    list; CSV has the same columns with the tags comma-joined.
    """
    if since is not None and until is not None and since >= until:
        raise UserError("--since must be before --until")
    glob = pattern.strip() if pattern is not None else None
    if glob == "":
        raise UserError("--model must not be empty")
    where = LogFilter(project, key_id, glob, status, since, until)
    with app.session() as session:
        records = request_log(session=session, where=where, limit=limit)
        items = [log_json(r) for r in records]
    if fmt == "json":
        print_json(items)
    elif fmt == "csv":
        print_csv(FIELDS, [[_csv_cell(i, f) for f in FIELDS] for i in items])
    elif not items:
        note("No requests match.")
    else:
        print_table(HEADERS, [_table_row(i) for i in items])
