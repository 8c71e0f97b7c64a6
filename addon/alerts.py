"""Budget alerts: thresholds, which ones a key's spend has crossed, and the webhook message.

A key with a budget may carry alert thresholds in percent of that budget (``50,80,100``;
1 to 1000, so an overspend can be announced too). A threshold has been crossed in a budget
period once the spend settled in that period reaches it: ``spent * 100 >= percent *
budget``. It fires once per period (``addon.store.alerts_repo`` claims it in the database),
so crossing is a level, not an edge: a check that comes late, or twice, fires nothing twice
and misses nothing. Pure code: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from addon.limits import day_key, period_reset, period_start_day
from addon.moments import iso_utc
from addon.pricing.cost import usd_text

MIN_PERCENT, MAX_PERCENT = 1, 1000


def parse_thresholds(text: str) -> tuple[int, ...]:
    """``"50,80,100"`` → ``(50, 80, 100)``; raises ValueError with a one-line reason."""
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise ValueError(f"{text!r} is not a list of percentages like 50,80,100")
    values = []
    for p in parts:
        if not p.isdigit():
            raise ValueError(f"alert threshold {p!r} is not a whole number of percent")
        value = int(p)
        if not MIN_PERCENT <= value <= MAX_PERCENT:
            raise ValueError(
                f"alert threshold {value} is out of range ({MIN_PERCENT} to {MAX_PERCENT} percent)"
            )
        if value in values:
            raise ValueError(f"alert threshold {value} is given twice")
        values.append(value)
    return tuple(sorted(values))


def format_thresholds(thresholds: tuple[int, ...]) -> str:
    return ",".join(str(t) for t in thresholds)


def crossed(thresholds: tuple[int, ...], spent_picousd: int, budget_picousd: int) -> list[int]:
    """The thresholds the spend has reached (integer arithmetic: no rounding at the edge)."""
    if budget_picousd <= 0:
        return list(thresholds)
    return [t for t in thresholds if spent_picousd * 100 >= t * budget_picousd]


@dataclass(frozen=True)
class Period:
    """One budget period of a key: [start, end) in whole UTC days (end None = open)."""

    start_day: str  # YYYY-MM-DD
    end_day: str | None

    @property
    def start(self) -> datetime:
        return datetime.strptime(self.start_day, "%Y-%m-%d").replace(tzinfo=UTC)


def period_of(budget_period: str, when: datetime, key_created_at: datetime) -> Period:
    """The period a moment belongs to; a ``total`` budget has one, from the key's first day."""
    first = period_start_day(budget_period, when)
    if first is None:
        return Period(day_key(key_created_at), None)
    reset = period_reset(budget_period, when)
    return Period(first, day_key(reset) if reset else None)


@dataclass(frozen=True)
class Alert:
    key_id: str
    project: str
    threshold_percent: int
    spent_picousd: int
    budget_picousd: int
    budget_period: str  # total | daily | monthly
    period_start: datetime
    instance_id: str
    fired_at: datetime


def message(alert: Alert) -> dict[str, object]:
    """The webhook body: Slack-compatible ``text`` plus structured fields. No secret: the
    key id is the public half of a key."""
    spent, budget = usd_text(alert.spent_picousd), usd_text(alert.budget_picousd)
    pct = alert.spent_picousd * 100 // alert.budget_picousd if alert.budget_picousd else 0
    period = "total" if alert.budget_period == "total" else alert.budget_period
    since = alert.period_start.strftime("%Y-%m-%d")
    text = (
        f"tollkeeper: key {alert.key_id} (project {alert.project}) has spent ${spent} of its"
        f" ${budget} {period} budget ({pct}%), crossing the {alert.threshold_percent}% alert"
        f" (period since {since} UTC)"
    )
    return {
        "text": text,
        "event": "budget_alert",
        "key_id": alert.key_id,
        "project": alert.project,
        "threshold_percent": alert.threshold_percent,
        "spent_usd": spent,
        "budget_usd": budget,
        "spent_percent": pct,
        "period": alert.budget_period,
        "period_start": _iso(alert.period_start),
        "fired_at": _iso(alert.fired_at),
        "gateway_instance": alert.instance_id,
    }


def _iso(moment: datetime) -> str:
    return iso_utc(moment)
