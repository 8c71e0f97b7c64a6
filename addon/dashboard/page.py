"""The dashboard as one HTML document: tables written here, charts drawn in the browser by
the vendored Chart.js from the same data, embedded as JSON. Every asset is inlined, so the
page needs nothing from the network and ``tollkeeper report --html`` is one file.

``live`` pages (the admin listener) link projects and keys to their drill-down
(``?project=…``, ``?key=…``); a report file filters its recent requests in the page.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from functools import cache
from html import escape
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from addon.dashboard import tables
from addon.dashboard.tables import fmt_value, table

PROJECT_COLUMNS = (
    ("project", "Project"),
    ("requests", "Requests"),
    ("input_tokens", "Input tok"),
    ("cached_input_tokens", "Cached tok"),
    ("output_tokens", "Output tok"),
    ("reasoning_tokens", "Reasoning tok"),
    ("cost_usd", "Cost"),
    ("unpriced_requests", "Unpriced"),
    ("error_requests", "Errors"),
)
MODEL_COLUMNS = (
    ("model", "Model"),
    ("requests", "Requests"),
    ("input_tokens", "Input tok"),
    ("output_tokens", "Output tok"),
    ("cost_usd", "Cost"),
)
KEY_COLUMNS = (("key_id", "Key"), ("project", "Project"), *MODEL_COLUMNS[1:])
BUDGET_COLUMNS = (
    ("key_id", "Key"),
    ("project", "Project"),
    ("period", "Period"),
    ("spent_usd", "Spent"),
    ("reserved_usd", "In flight"),
    ("budget_usd", "Budget"),
    ("used_percent", "Used"),
    ("resets_at", "Resets"),
)
ERROR_COLUMNS = (("error_kind", "Error"), ("upstream", "Reached provider"), ("requests", "Count"))
REAL_KEY_COLUMNS = (
    ("provider", "Provider"),
    ("label", "Label"),
    ("state", "State"),
    ("cooldown_until", "Cooling until"),
    ("last_error", "Last error"),
)
RECENT_COLUMNS = (
    ("created_at", "Time (UTC)"),
    ("key_id", "Key"),
    ("project", "Project"),
    ("provider", "Provider"),
    ("model", "Model"),
    ("status", "Status"),
    ("input_tokens", "In tok"),
    ("output_tokens", "Out tok"),
    ("cost_usd", "Cost"),
    ("latency_ms", "Latency ms"),
    ("error_kind", "Error"),
)

HOURLY_SPAN = timedelta(hours=48)


@cache
def asset(name: str) -> str:
    return resources.files("addon.dashboard").joinpath("static", name).read_text("utf-8")


def script_json(value: Any) -> str:
    """JSON safe inside a <script> element: no ``</script>`` or ``<!--`` can close it."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def drill_links(scope: dict[str, Any]) -> tables.Link:
    """Links of a live page: the same period, narrowed to one project or key."""
    base = {k: scope[k] for k in ("since", "until") if scope.get(k)}
    base["bucket"] = scope["bucket"]

    def link(field: str, value: str | None) -> str:
        name = "key" if field == "key_id" else "project"
        extra = {"project": scope["project"]} if name == "key" and scope.get("project") else {}
        return "?" + urlencode({**base, **extra, name: value or ""}) + "#recent-requests"

    return link


def _cards(totals: dict[str, Any]) -> str:
    cards = [
        ("requests", "Requests", tables.count(totals["requests"])),
        ("cost_usd", "Spend", tables.money(totals["cost_usd"])),
        ("input_tokens", "Input tokens", tables.count(totals["input_tokens"])),
        ("output_tokens", "Output tokens", tables.count(totals["output_tokens"])),
        ("error_rate", "Error rate", tables.percent(totals["error_rate"])),
        ("rejection_rate", "Rejected by gateway", tables.percent(totals["rejection_rate"])),
    ]
    notes = {"cost_usd": f"+ {totals['unpriced_requests']:,} unpriced requests"}
    if not totals["unpriced_requests"]:
        notes = {}
    return "".join(
        f'<div class="card" data-field="{f}"><span>{escape(t)}</span><b>{escape(v)}</b>'
        + (f"<small>{escape(notes[f])}</small>" if f in notes else "")
        + "</div>"
        for f, t, v in cards
    )


def _nav(scope: dict[str, Any], generated_at: str) -> str:
    """Links of a live page: the same scope by day or by hour (the last 48 hours when the
    period is open: hours since the first record would be too many to read)."""
    keep = {k: scope[k] for k in ("since", "until", "project", "key_id") if scope.get(k)}
    keep = {("key" if k == "key_id" else k): v for k, v in keep.items()}
    hourly = dict(keep)
    label = "by hour"
    if "since" not in keep:
        now = datetime.fromisoformat(generated_at.replace("Z", "+00:00"))
        hourly["since"] = (now - HOURLY_SPAN).isoformat(timespec="seconds").replace("+00:00", "Z")
        label = "by hour (last 48 h)"
    links = [
        ("by day", {**keep, "bucket": "day"}),
        (label, {**hourly, "bucket": "hour"}),
        ("everything", {}),
    ]
    return " · ".join(f'<a href="?{escape(urlencode(q))}">{escape(t)}</a>' for t, q in links)


def _header(data: dict[str, Any], live: bool) -> str:
    scope = data["scope"]
    parts = [f"from {scope['since'] or 'the first record'}", f"to {scope['until'] or 'now'}"]
    parts += [f"{k} {scope[k]}" for k in ("project", "key_id") if scope.get(k)]
    nav = _nav(scope, data["generated_at"]) if live else ""
    return (
        f"<header><h1>Tollkeeper usage</h1><p>{escape(', '.join(parts))}; generated"
        f" {escape(data['generated_at'])} (UTC)</p><nav>{nav}</nav></header>"
    )


def _section(title: str, body: str, ident: str = "") -> str:
    anchor = f' id="{ident}"' if ident else ""
    return f"<section{anchor}><h2>{escape(title)}</h2>{body}</section>"


def _chart(name: str, title: str) -> str:
    return (
        f"<figure><figcaption>{escape(title)}</figcaption>"
        f'<div class="chart"><canvas id="{name}"></canvas></div></figure>'
    )


def _recent_title(scope: dict[str, Any]) -> str:
    narrowed = [f"{k.replace('_id', '')} {scope[k]}" for k in ("project", "key_id") if scope[k]]
    return "Recent requests" + (f" of {' and '.join(narrowed)}" if narrowed else "")


def render(data: dict[str, Any], *, live: bool) -> str:
    """The whole page for ``data`` (``addon.dashboard.data.collect``)."""
    link = drill_links(data["scope"]) if live else None
    bucket = data["scope"]["bucket"]
    sections = [
        f'<div class="cards">{_cards(data["totals"])}</div>',
        _section(
            f"Spend and tokens per project, by {bucket}",
            _chart("chart-cost", "Spend (USD)") + _chart("chart-tokens", "Tokens (input + output)"),
        ),
        _section(
            "Projects",
            table(
                "projects",
                PROJECT_COLUMNS,
                data["projects"],
                key="project",
                fmt=fmt_value,
                link=link,
            ),
        ),
        _section(
            "Top models",
            _chart("chart-models", "Spend by model (USD)")
            + table("models", MODEL_COLUMNS, data["models"], key="model", fmt=fmt_value),
        ),
        _section(
            "Top keys",
            table("keys", KEY_COLUMNS, data["keys"], key="key_id", fmt=fmt_value, link=link),
        ),
        _section(
            "Budgets",
            table(
                "budgets", BUDGET_COLUMNS, data["budgets"], key="key_id", fmt=fmt_value, link=link
            ),
        ),
        _section(
            "Errors and rejections",
            table("errors", ERROR_COLUMNS, data["error_kinds"], key="error_kind", fmt=fmt_value),
        ),
        _section(
            "Real keys",
            table("real-keys", REAL_KEY_COLUMNS, data["real_keys"], key="label", fmt=fmt_value),
        ),
        _section(
            _recent_title(data["scope"]),
            '<p class="filter"></p>'
            + table(
                "recent",
                RECENT_COLUMNS,
                data["recent"],
                key="key_id",
                fmt=fmt_value,
                link=link,
            ),
            "recent-requests",
        ),
    ]
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Tollkeeper usage</title><style>{asset('dashboard.css')}</style></head>"
        f'<body data-live="{"1" if live else "0"}">{_header(data, live)}<main>'
        f"{''.join(sections)}</main>"
        f'<script type="application/json" id="tk-data">{script_json(data)}</script>'
        f"<script>{asset('chart.umd.min.js')}</script>"
        f"<script>{asset('dashboard.js')}</script></body></html>"
    )
