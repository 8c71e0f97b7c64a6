from datetime import UTC, datetime, timedelta

from sqlmodel import Session
from unit.dashboard.conftest import DAY1, DAY2, HOSTILE

from addon.dashboard.data import Scope, collect
from addon.store import keys_repo, usage_repo
from addon.store.models import RealKey, UsageRecord
from addon.store.usage_repo import insert_records

NOW = datetime(2025, 1, 3, tzinfo=UTC)


def test_projects_are_usage_report_groups_in_the_cli_shape(session: Session) -> None:
    data = collect(session=session, scope=Scope(), now=NOW)
    projects = {p["project"]: p for p in data["projects"]}
    assert projects["alpha"]["requests"] == 2
    assert projects["alpha"]["cost_usd"] == "0.001500000003"
    assert projects["beta"]["cost_usd"] == "0.00"  # one priced (free) error, one unpriced
    assert projects["beta"]["unpriced_requests"] == 1
    assert projects[HOSTILE]["cost_usd"] is None  # nothing priced: unpriced, never $0
    rows = usage_repo.report(session=session, by="project")
    assert sorted(projects) == sorted(r["project"] for r in rows)


def test_totals_count_errors_and_gateway_rejections_apart(session: Session) -> None:
    totals = collect(session=session, scope=Scope(), now=NOW)["totals"]
    assert totals["requests"] == 5 and totals["error_requests"] == 2
    assert totals["rejections"] == 1  # invalid_key never reached a provider
    assert totals["error_rate"] == 0.4 and totals["rejection_rate"] == 0.2
    assert totals["cost_usd"] == "0.001500000003"


def test_the_period_and_project_narrow_everything(session: Session) -> None:
    scope = Scope(since=DAY2 - timedelta(hours=1), project="beta")
    data = collect(session=session, scope=scope, now=NOW)
    assert [p["project"] for p in data["projects"]] == ["beta"]
    assert {m["model"] for m in data["models"]} == {"mystery", "gpt-4o"}
    assert [k["key_id"] for k in data["keys"]] == ["k2"]
    assert {r["project"] for r in data["recent"]} == {"beta"}
    assert data["series"]["labels"] == ["2025-01-02"]


def test_drill_down_to_a_key_narrows_the_recent_requests_only(session: Session) -> None:
    data = collect(session=session, scope=Scope(key_id="k1"), now=NOW)
    assert [r["key_id"] for r in data["recent"]] == ["k1", "k1"]
    assert len(data["projects"]) == 3


def test_series_by_hour_and_by_day(session: Session) -> None:
    by_day = collect(session=session, scope=Scope(), now=NOW)["series"]
    assert by_day["labels"] == ["2025-01-01", "2025-01-02"]
    alpha = next(p for p in by_day["projects"] if p["project"] == "alpha")
    assert alpha["requests"] == [2, 0] and alpha["tokens"] == [1515, 0]
    by_hour = collect(session=session, scope=Scope(bucket="hour"), now=NOW)["series"]
    assert by_hour["labels"][0] == "2025-01-01 10" and by_hour["labels"][-1] == "2025-01-02 12"
    assert len(by_hour["labels"]) == 27


def test_top_models_and_keys_rank_by_spend(session: Session) -> None:
    data = collect(session=session, scope=Scope(), now=NOW)
    assert data["models"][0]["model"] == "gpt-4o" and data["models"][0]["requests"] == 3
    assert data["keys"][0]["key_id"] == "k1"
    assert "cost_picousd" not in data["models"][0]


def test_budget_burn_against_the_limit_and_period(session: Session) -> None:
    now = datetime.now(UTC)
    row, _ = keys_repo.create_key(
        session=session,
        project="capped",
        actor="t",
        policy=keys_repo.KeyPolicy(budget_picousd=4 * 10**12, budget_period="daily"),
    )
    spent = UsageRecord(request_id="b1", created_at=now, virtual_key_id=row.id,
                        project="capped", provider="openai", cost_picousd=3 * 10**12)  # fmt: skip
    insert_records(session=session, records=[spent])
    budgets = collect(session=session, scope=Scope(), now=now)["budgets"]
    assert budgets == [
        {
            "key_id": row.id,
            "project": "capped",
            "period": "daily",
            "budget_usd": "4.00",
            "spent_usd": "3.00",
            "reserved_usd": "0.00",
            "used_percent": 75.0,
            "resets_at": (now + timedelta(days=1)).strftime("%Y-%m-%dT00:00:00Z"),
        }
    ]
    other = collect(session=session, scope=Scope(project="alpha"), now=now)["budgets"]
    assert other == []  # a project's report shows its own keys' budgets


def test_real_keys_show_the_live_state_when_the_gateway_has_one(session: Session) -> None:
    session.add(RealKey(provider="openai", label="main", env_ref="OPENAI_KEY", last4="abcd"))
    session.commit()
    stored = collect(session=session, scope=Scope(), now=NOW)["real_keys"]
    assert [(k["provider"], k["label"], k["state"]) for k in stored] == [
        ("openai", "main", "healthy")
    ]
    live = [("openai", "main", "cooling")]
    keys = collect(session=session, scope=Scope(), now=NOW, live_keys=live)["real_keys"]
    assert keys[0]["state"] == "cooling"


def test_recent_requests_are_newest_first_and_capped(session: Session) -> None:
    recent = collect(session=session, scope=Scope(recent=2), now=NOW)["recent"]
    assert [r["created_at"] for r in recent] == ["2025-01-02T12:00:00Z"] * 2
    first = collect(session=session, scope=Scope(), now=NOW)["recent"][-1]
    assert first["created_at"] == DAY1.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert first["cost_usd"] == "0.0015"
