"""Budget alerts in the database: which keys are watched, their spend in a period, the claim
that makes an alert fire once across every gateway, and how its delivery went.

``claim`` inserts the alert's row with ``ON CONFLICT DO NOTHING`` on its primary key (key,
period start, threshold): of several processes sharing the database that see the same
crossing, exactly one insert wins, and only that process sends the webhook.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from addon.alerts import Alert, Period
from addon.pricing.cost import usd_text
from addon.store.audit_repo import record_event
from addon.store.models import BudgetAlert, GatewayInstance, KeyDailySpend, VirtualKey

ERROR_MAX = 200


def watched_keys(session: Session, key_ids: Iterable[str]) -> list[VirtualKey]:
    """The keys among ``key_ids`` that have a budget and alert thresholds."""
    ids = sorted(set(key_ids))
    if not ids:
        return []
    stmt = select(VirtualKey).where(
        col(VirtualKey.id).in_(ids),
        col(VirtualKey.alert_at) != "",
        col(VirtualKey.budget_picousd).is_not(None),
    )
    return list(session.exec(stmt))


def spent_in(session: Session, key_id: str, period: Period) -> int:
    """Spend settled in one period (the writer's per-day counters); the one period of a
    ``total`` budget (no end) counts every day, as the budget does."""
    stmt = select(func.coalesce(func.sum(col(KeyDailySpend.spent_picousd)), 0)).where(
        col(KeyDailySpend.virtual_key_id) == key_id
    )
    if period.end_day is not None:
        stmt = stmt.where(
            col(KeyDailySpend.day) >= period.start_day, col(KeyDailySpend.day) < period.end_day
        )
    return int(session.exec(stmt).one())


def fired(session: Session, key_id: str, period_start: str | None = None) -> list[BudgetAlert]:
    """The alerts of a key (of one period when given), oldest first."""
    stmt = select(BudgetAlert).where(col(BudgetAlert.virtual_key_id) == key_id)
    if period_start is not None:
        stmt = stmt.where(col(BudgetAlert.period_start) == period_start)
    return list(session.exec(stmt.order_by(col(BudgetAlert.fired_at), "threshold_percent")))


def claim(session: Session, alert: Alert, *, delivery: str) -> bool:
    """Insert the alert's row; True when this call made it (commits)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(BudgetAlert.__table__).values(  # type: ignore[attr-defined]
        virtual_key_id=alert.key_id,
        period_start=alert.period_start.strftime("%Y-%m-%d"),
        threshold_percent=alert.threshold_percent,
        fired_at=alert.fired_at,
        spent_picousd=alert.spent_picousd,
        budget_picousd=alert.budget_picousd,
        instance_id=alert.instance_id,
        delivery=delivery,
        attempts=0,
    )
    # RETURNING, not rowcount: a conflict returns no row on both dialects
    claiming = stmt.on_conflict_do_nothing().returning(stmt.table.c.threshold_percent)
    won = session.execute(claiming).first() is not None
    if won and delivery != "pending":  # nothing will be sent: audit it now
        _audit(session, alert, delivery=delivery, attempts=0, error=None)
    session.commit()
    return won


def adopt_orphans(session: Session, me: str) -> list[tuple[BudgetAlert, VirtualKey]]:
    """Take over the unsent alerts of gateways that are gone (killed between claiming an
    alert and sending it), so they are sent after all; commits. Two gateways adopting at
    once: the row lock and the re-checked condition give each alert to one of them."""
    live = select(col(GatewayInstance.id))
    stmt = (
        update(BudgetAlert)
        .where(col(BudgetAlert.delivery) == "pending", col(BudgetAlert.instance_id).not_in(live))
        .values(instance_id=me)
        .returning(
            col(BudgetAlert.virtual_key_id),
            col(BudgetAlert.period_start),
            col(BudgetAlert.threshold_percent),
        )
    )
    keys = list(session.execute(stmt).all())
    session.commit()
    out = []
    for key_id, period_start, threshold in keys:
        alert = session.get(BudgetAlert, (key_id, period_start, threshold))
        row = session.get(VirtualKey, key_id)
        if alert is not None and row is not None:
            out.append((alert, row))
    return out


def delivered(
    session: Session,
    alert: Alert,
    *,
    ok: bool,
    attempts: int,
    error: str | None,
    now: datetime,
) -> None:
    """Record how the webhook went, and audit the alert (commits)."""
    delivery = "sent" if ok else "failed"
    error = error[:ERROR_MAX] if error else None
    session.execute(
        update(BudgetAlert)
        .where(
            col(BudgetAlert.virtual_key_id) == alert.key_id,
            col(BudgetAlert.period_start) == alert.period_start.strftime("%Y-%m-%d"),
            col(BudgetAlert.threshold_percent) == alert.threshold_percent,
        )
        .values(
            delivery=delivery,
            attempts=attempts,
            delivered_at=now if ok else None,
            last_error=error,
        )
    )
    _audit(session, alert, delivery=delivery, attempts=attempts, error=error)
    session.commit()


def _audit(
    session: Session, alert: Alert, *, delivery: str, attempts: int, error: str | None
) -> None:
    details: dict[str, object] = {
        "threshold_percent": alert.threshold_percent,
        "period_start": alert.period_start.strftime("%Y-%m-%d"),
        "spent_usd": usd_text(alert.spent_picousd),
        "budget_usd": usd_text(alert.budget_picousd),
        "delivery": delivery,
        "attempts": attempts,
    }
    if error:
        details["error"] = error
    record_event(
        session=session,
        actor=f"gateway {alert.instance_id}",
        action="key.budget_alert",
        target=alert.key_id,
        details=details,
    )
