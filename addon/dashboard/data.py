"""What the dashboard shows, as one JSON-able dict built from the store.

The per-project, per-model and per-key totals are ``usage_repo.report`` in the shape
``tollkeeper usage --format json`` prints (``report_fields.report_item``): the page and the CLI
agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlmodel import Session

from addon.dashboard.series import project_series
from addon.limits import Limits, period_reset
from addon.moments import iso_or_none
from addon.pricing.cost import usd_text
from addon.store import keys_repo, limits_repo, realkeys_repo, report_repo, usage_repo
from addon.store.models import UsageRecord, VirtualKey
from addon.store.report_fields import GROUPS, report_item, total_item

TOP = 10  # models and keys listed
RealKeyState = tuple[str, str, str]  # provider, label, state


@dataclass(frozen=True)
class Scope:
    """The period and drill-down the page shows; ``bucket`` is day or hour."""

    since: datetime | None = None
    until: datetime | None = None
    project: str | None = None
    key_id: str | None = None
    bucket: str = "day"
    recent: int = 50


iso = iso_or_none  # the page's times, as the CLI prints them


def _top(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def weight(i: dict[str, Any]) -> tuple[int, int]:
        return (int(i["cost_picousd"]), int(i["requests"]))

    return sorted(items, key=weight, reverse=True)[:TOP]


def _with_cost(session: Session, by: str, scope: Scope) -> list[dict[str, Any]]:
    """Groups with their raw cost kept for ranking (dropped before the page sees them)."""
    rows = usage_repo.report(
        session=session, by=by, since=scope.since, until=scope.until, project=scope.project
    )
    field = GROUPS[by]
    return [{**report_item(r, field), "cost_picousd": int(r["cost_picousd"])} for r in rows]


def _totals(projects: list[dict[str, Any]], rejections: int) -> dict[str, Any]:
    """The sum of the project groups, shaped like one of them, with the rates."""
    out = total_item(projects, "project", None)
    del out["project"]
    out["rejections"] = rejections
    out["error_rate"] = _rate(out["error_requests"], out["requests"])
    out["rejection_rate"] = _rate(rejections, out["requests"])
    return out


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _budgets(session: Session, keys: list[VirtualKey], now: datetime) -> list[dict[str, Any]]:
    out = []
    for k in keys:
        if k.budget_picousd is None or not keys_repo.is_active(k, now):
            continue
        limits = Limits(k.id, k.budget_picousd, k.budget_period, k.rpm, k.tpm, k.max_parallel)
        live = limits_repo.state(session, limits, now)
        used = live.spent_picousd + live.reserved_picousd
        out.append(
            {
                "key_id": k.id,
                "project": k.project,
                "period": k.budget_period,
                "budget_usd": usd_text(k.budget_picousd),
                "spent_usd": usd_text(live.spent_picousd),
                "reserved_usd": usd_text(live.reserved_picousd),
                "used_percent": round(100 * used / k.budget_picousd, 2) if k.budget_picousd else 0,
                "resets_at": iso(period_reset(k.budget_period, now)),
            }
        )
    return sorted(out, key=lambda b: -float(b["used_percent"]))


def _real_keys(session: Session, live: Iterable[RealKeyState] | None) -> list[dict[str, Any]]:
    """Stored health of each real key; the gateway's live pool state where it has one."""
    states = {(p, label): s for p, label, s in live or ()}
    return [
        {
            "provider": r.provider,
            "label": r.label,
            "state": states.get((r.provider, r.label), r.status),
            "cooldown_until": iso(r.cooldown_until),
            "last_error": r.last_error,
        }
        for r in realkeys_repo.list_real_keys(session=session)
    ]


def request_item(r: UsageRecord) -> dict[str, Any]:
    return {
        "created_at": iso(r.created_at),
        "key_id": r.virtual_key_id,
        "project": r.project,
        "provider": r.provider,
        "model": r.model,
        "status": r.status_code,
        "input_tokens": r.input_tokens,
        "output_tokens": r.output_tokens,
        "cost_usd": None if r.cost_picousd is None else usd_text(r.cost_picousd),
        "latency_ms": r.latency_ms,
        "error_kind": r.error_kind,
    }


def collect(
    *,
    session: Session,
    scope: Scope,
    now: datetime,
    live_keys: Iterable[RealKeyState] | None = None,
) -> dict[str, Any]:
    """Everything the page shows for ``scope`` at ``now``."""
    where = report_repo.Filter(scope.since, scope.until, scope.project)
    projects = _with_cost(session, "project", scope)
    kinds = report_repo.error_kinds(session=session, where=where)
    rejections = sum(int(k["requests"]) for k in kinds if not k["upstream"])
    keys = keys_repo.list_keys(session=session, include_inactive=True)
    project_of = {k.id: k.project for k in keys}
    top_keys = [
        {**i, "project": project_of.get(i["key_id"])}
        for i in _top(_with_cost(session, "key", scope))
    ]
    drill = replace(where, key_id=scope.key_id)
    return {
        "generated_at": iso(now),
        "scope": {
            "since": iso(scope.since),
            "until": iso(scope.until),
            "project": scope.project,
            "key_id": scope.key_id,
            "bucket": scope.bucket,
        },
        "totals": _totals(projects, rejections),
        "projects": [_drop_cost(p) for p in projects],
        "series": project_series(
            report_repo.series(session=session, bucket=scope.bucket, where=where), scope.bucket
        ),
        "models": [_drop_cost(i) for i in _top(_with_cost(session, "model", scope))],
        "keys": [_drop_cost(i) for i in top_keys],
        "budgets": _budgets(session, [k for k in keys if scope.project in (None, k.project)], now),
        "error_kinds": [{**k, "upstream": bool(k["upstream"])} for k in kinds],
        "real_keys": _real_keys(session, live_keys),
        "recent": [
            request_item(r)
            for r in report_repo.recent(session=session, where=drill, limit=scope.recent)
        ],
    }


def _drop_cost(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != "cost_picousd"}
