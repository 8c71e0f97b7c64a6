"""``tollkeeper usage reprice``: stored costs recomputed at the current prices.

Expected costs are computed here with Decimal arithmetic from token counts and rates.
"""

import json
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlmodel import Session, select

from addon.store.models import KeyDailySpend, UsageRecord
from addon.store.usage_repo import insert_records

DAY1 = datetime(2025, 1, 1, 10, tzinfo=UTC)
DAY2 = datetime(2025, 1, 2, 10, tzinfo=UTC)
DAY3 = datetime(2025, 1, 3, 10, tzinfo=UTC)


def _record(request_id: str, when: datetime, **fields) -> UsageRecord:
    base = {
        "virtual_key_id": "k1",
        "project": "alpha",
        "provider": "openai",
        "model": "acme-chat",
        "input_tokens": 1_000,
        "output_tokens": 100,
        "cost_picousd": None,
    }
    return UsageRecord(request_id=request_id, created_at=when, **{**base, **fields})


def _usd(*, input_tokens: int, output_tokens: int, input_rate: str, output_rate: str,
         cached_tokens: int = 0, cached_rate: str = "0") -> Decimal:  # fmt: skip
    """Independent cost in USD: tokens x USD per million tokens."""
    uncached = input_tokens - cached_tokens
    per_mtok = (
        uncached * Decimal(input_rate)
        + cached_tokens * Decimal(cached_rate)
        + output_tokens * Decimal(output_rate)
    )
    return per_mtok / Decimal(10**6)


def _picousd(usd: Decimal) -> int:
    picousd = usd * 10**12
    assert picousd == picousd.to_integral_value()
    return int(picousd)


@pytest.fixture
def records(store) -> None:
    rows = [
        _record("chat-1", DAY1, input_tokens=12_000, output_tokens=345),
        _record("chat-2", DAY2, virtual_key_id="k2", input_tokens=500, output_tokens=7),
        _record("gpt-1", DAY1, model="gpt-4o", input_tokens=4_000, cached_input_tokens=1_000,
                output_tokens=200, cost_picousd=11_500_000_000),
        _record("gpt-2", DAY3, model="gpt-4o", input_tokens=10, output_tokens=1,
                cost_picousd=35_000_000),
        _record("mystery", DAY2, model="mystery-9000", input_tokens=700, output_tokens=70),
    ]  # fmt: skip
    with Session(store) as s:
        insert_records(session=s, records=rows)


def _costs(store) -> dict[str, int | None]:
    with Session(store) as s:
        return {r.request_id: r.cost_picousd for r in s.exec(select(UsageRecord))}


def _spend(store) -> dict[tuple[str, str], int]:
    with Session(store) as s:
        return {(r.virtual_key_id, r.day): r.spent_picousd for r in s.exec(select(KeyDailySpend))}


def _spend_from_records(store) -> dict[tuple[str, str], int]:
    totals: dict[tuple[str, str], int] = defaultdict(int)
    with Session(store) as s:
        for r in s.exec(select(UsageRecord)):
            day = r.created_at.astimezone(UTC).strftime("%Y-%m-%d")
            totals[(r.virtual_key_id, day)] += r.cost_picousd or 0
    return dict(totals)


def _reprice(ok, *args: str) -> dict:
    return json.loads(ok("usage", "reprice", "--json", *args).stdout)


CHAT_1 = _picousd(_usd(input_tokens=12_000, output_tokens=345, input_rate="1.5", output_rate="6"))
CHAT_2 = _picousd(_usd(input_tokens=500, output_tokens=7, input_rate="1.5", output_rate="6"))
GPT_1 = _picousd(
    _usd(input_tokens=4_000, cached_tokens=1_000, output_tokens=200, input_rate="3",
         cached_rate="0.75", output_rate="12.5")
)  # fmt: skip
GPT_2 = _picousd(_usd(input_tokens=10, output_tokens=1, input_rate="3", output_rate="12.5"))


def _set_prices(ok) -> None:
    ok("prices", "set", "acme-chat", "--input", "1.5", "--output", "6")
    ok("prices", "set", "gpt-4o", "--input", "3", "--output", "12.5", "--cached-input", "0.75")


@pytest.mark.usefixtures("records")
def test_reprice_after_prices_set_changes_the_costs_exactly(ok, store):
    _set_prices(ok)
    summary = _reprice(ok)
    assert _costs(store) == {
        "chat-1": CHAT_1,
        "chat-2": CHAT_2,
        "gpt-1": GPT_1,
        "gpt-2": GPT_2,
        "mystery": None,  # still no price: never $0
    }
    before = Decimal("0.0115") + Decimal("0.000035")
    after = Decimal(CHAT_1 + CHAT_2 + GPT_1 + GPT_2) / 10**12
    assert summary == {
        "dry_run": False,
        "since": None,
        "until": None,
        "model": None,
        "examined": 5,
        "repriced": 4,
        "newly_priced": 2,
        "unchanged": 0,
        "still_unpriced": 1,
        "kept_without_price": 0,
        "spend_days_adjusted": 3,
        "cost_before_usd": "0.011535",
        "cost_after_usd": summary["cost_after_usd"],
    }
    assert Decimal(summary["cost_before_usd"]) == before
    assert Decimal(summary["cost_after_usd"]) == after
    by_model = {i["model"]: i for i in json.loads(ok("usage", "--json", "--by", "model").stdout)}
    assert Decimal(by_model["acme-chat"]["cost_usd"]) == Decimal(CHAT_1 + CHAT_2) / 10**12
    assert by_model["acme-chat"]["unpriced_requests"] == 0
    assert by_model["mystery-9000"]["unpriced_requests"] == 1


@pytest.mark.usefixtures("records")
def test_budget_spend_follows_the_new_costs(ok, store):
    _set_prices(ok)
    ok("usage", "reprice")
    assert _spend(store) == _spend_from_records(store)
    assert _spend(store)[("k1", "2025-01-01")] == CHAT_1 + GPT_1


def test_a_keys_spend_shows_the_repriced_costs(ok, store):
    key = json.loads(ok("keys", "create", "--project", "p", "--budget", "10", "--json").stdout)
    with Session(store) as s:
        insert_records(
            session=s,
            records=[_record("r1", DAY1, virtual_key_id=key["id"], cost_picousd=1)],
        )
    ok("prices", "set", "acme-chat", "--input", "2", "--output", "4")
    ok("usage", "reprice")
    shown = json.loads(ok("keys", "show", key["id"], "--json").stdout)
    assert Decimal(shown["spent_usd"]) == Decimal("0.0024")  # 1000 x $2/M + 100 x $4/M


@pytest.mark.usefixtures("records")
def test_a_second_run_changes_nothing(ok, store):
    _set_prices(ok)
    first = _reprice(ok)
    costs, spend = _costs(store), _spend(store)
    second = _reprice(ok)
    assert (second["repriced"], second["unchanged"], second["still_unpriced"]) == (0, 4, 1)
    assert second["cost_before_usd"] == second["cost_after_usd"] == first["cost_after_usd"]
    assert _costs(store) == costs and _spend(store) == spend


@pytest.mark.usefixtures("records")
def test_dry_run_changes_nothing_and_is_not_audited(ok, store):
    _set_prices(ok)
    costs, spend = _costs(store), _spend(store)
    dry = _reprice(ok, "--dry-run")
    assert dry["dry_run"] is True and dry["repriced"] == 4 and dry["newly_priced"] == 2
    assert _costs(store) == costs and _spend(store) == spend
    text = ok("usage", "reprice", "--dry-run")
    assert "Dry run: nothing was changed." in text.stderr
    actions = [e["action"] for e in json.loads(ok("audit", "--json").stdout)]
    assert "usage.repriced" not in actions
    assert _reprice(ok) == {**dry, "dry_run": False}  # the real run does what was counted


@pytest.mark.usefixtures("records")
@pytest.mark.parametrize(
    ("args", "changed"),
    [
        (["--since", "2025-01-02"], {"chat-2", "gpt-2"}),
        (["--until", "2025-01-01"], {"chat-1", "gpt-1"}),  # a plain date includes that day
        (["--until", "2025-01-02T10:00:00Z"], {"chat-1", "gpt-1"}),  # a time is exclusive
        (["--since", "2025-01-02", "--until", "2025-01-02"], {"chat-2"}),
        (["--model", "GPT-4*"], {"gpt-1", "gpt-2"}),
        (["--model", "acme-chat", "--since", "2025-01-02"], {"chat-2"}),
        (["--model", "nothing"], set()),
    ],
)
def test_filters_limit_what_is_repriced(ok, store, args, changed):
    _set_prices(ok)
    before = _costs(store)
    summary = _reprice(ok, *args)
    after = _costs(store)
    assert {k for k in after if after[k] != before[k]} == changed
    assert summary["repriced"] == len(changed)
    assert _spend(store) == _spend_from_records(store)


@pytest.mark.usefixtures("records")
def test_the_summary_table(ok):
    _set_prices(ok)
    lines = ok("usage", "reprice").stdout.splitlines()
    assert lines[0].split() == ["Records", "examined:", "5"]
    assert lines[1].split() == ["Repriced:", "4", "(2", "newly", "priced)"]
    assert lines[3].split() == ["Still", "unpriced:", "1"]
    assert lines[-2].split() == ["Cost", "before", "(USD):", "0.011535"]
    expected = Decimal(CHAT_1 + CHAT_2 + GPT_1 + GPT_2) / 10**12
    assert Decimal(lines[-1].split()[-1]) == expected


@pytest.mark.usefixtures("records")
def test_a_run_is_audited_with_its_range_and_counts(ok):
    _set_prices(ok)
    ok("usage", "reprice", "--since", "2025-01-02", "--model", "acme-*", actor="pat")
    event = json.loads(ok("audit", "--json").stdout)[-1]
    assert (event["action"], event["actor"]) == ("usage.repriced", "pat")
    assert event["target"] == "usage records since 2025-01-02T00:00:00Z, model acme-*"
    details = event["details"]
    assert (details["examined"], details["repriced"], details["newly_priced"]) == (1, 1, 1)
    assert details["since"] == "2025-01-02T00:00:00Z" and details["model"] == "acme-*"
    assert Decimal(details["cost_after_usd"]) == Decimal(CHAT_2) / 10**12
    assert "[redacted]" not in json.dumps(details)


@pytest.mark.usefixtures("records")
def test_the_report_still_works_beside_the_subcommand(ok):
    items = json.loads(ok("usage", "--by", "key", "--json").stdout)
    assert {i["key_id"]: i["requests"] for i in items} == {"k1": 4, "k2": 1}
    assert "reprice" in ok("usage", "--help").stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["usage", "--since", "2025-01-01", "reprice"], "--since belongs to the usage report"),
        (["usage", "--json", "reprice"], "--json belongs to the usage report"),
        (["usage", "reprice", "--since", "2025-01-02", "--until", "2025-01-01"], "before --until"),
        (["usage", "reprice", "--until", "yesterday"], "is not a date"),
        (["usage", "reprice", "--model", " "], "--model must not be empty"),
        (["usage", "reprice", "--by", "day"], "No such option '--by'"),
        (["usage", "repirce"], "No such command 'repirce'"),
    ],
)
def test_bad_reprice_commands_fail_in_one_line(tk, one_line_error, args, fragment):
    one_line_error(tk(*args), fragment)
