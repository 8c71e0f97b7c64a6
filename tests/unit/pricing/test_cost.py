from decimal import Decimal
from fractions import Fraction

import pytest

from addon.metering.usage import Usage
from addon.pricing.cost import cost_picousd, format_usd, picousd_to_usd, select_price
from addon.pricing.price import Price, Tier
from addon.pricing.table import PriceBook

D = Decimal


def bundled(provider: str, model: str) -> Price:
    price = PriceBook.bundled().lookup(provider, model)
    assert price is not None, model
    return price


# providers.md §4.4 "Check against the example payloads", with the §1.12 usage normalised to
# tollkeeper's convention (input includes cache reads and writes, output includes reasoning).
SECTION_4_4 = [
    pytest.param(
        "openai",
        "gpt-4o-mini-2024-07-18",
        Usage(input_tokens=1200, cached_input_tokens=1024, output_tokens=40),
        "0.0001272",
        id="gpt-4o-mini chat",
    ),
    # §1.12 item 2 gives no prompt size; 300 uncached prompt tokens is the only count that
    # yields the stated $0.002618 (300 x 1.1 + 520 x 4.4 = 2618 per 1M).
    pytest.param(
        "openai",
        "o4-mini-2025-04-16",
        Usage(input_tokens=300, output_tokens=520, reasoning_tokens=512),
        "0.002618",
        id="o4-mini reasoning",
    ),
    pytest.param(
        "openai",
        "gpt-5-mini-2025-08-07",
        Usage(input_tokens=2048, cached_input_tokens=1536, output_tokens=180, reasoning_tokens=128),
        "0.0005264",
        id="gpt-5-mini responses",
    ),
    pytest.param(
        "anthropic",
        "claude-sonnet-4-5-20250929",
        Usage(input_tokens=25 + 1800, cache_write_tokens=1800, output_tokens=12),
        "0.007005",
        id="claude-sonnet-4-5 cache write",
    ),
    pytest.param(
        "anthropic",
        "claude-haiku-4-5",
        Usage(input_tokens=25 + 1800, cached_input_tokens=1800, output_tokens=15),
        "0.00028",
        id="claude-haiku-4-5 stream cache read",
    ),
    pytest.param(
        "gemini",
        "gemini-2.5-flash",
        Usage(
            input_tokens=2100,
            cached_input_tokens=2048,
            output_tokens=40 + 260,
            reasoning_tokens=260,
        ),
        "0.00082704",
        id="gemini-2.5-flash thoughts",
    ),
    pytest.param(
        "deepseek",
        "deepseek-chat",
        Usage(input_tokens=1500, cached_input_tokens=1280, output_tokens=80),
        "0.00013104",
        id="deepseek-chat cache hit",
    ),
    pytest.param(
        "openai",
        "text-embedding-3-small",
        Usage(input_tokens=8),
        "0.00000016",  # 1.6e-07
        id="text-embedding-3-small",
    ),
]


@pytest.mark.parametrize(("provider", "model", "usage", "usd"), SECTION_4_4)
def test_cost_matches_providers_md_4_4_with_the_bundled_table(provider, model, usage, usd):
    cost = cost_picousd(usage, bundled(provider, model))
    assert type(cost) is int
    assert cost == int(D(usd) * 10**12)
    assert format_usd(cost) == usd
    assert picousd_to_usd(cost) == D(usd)


def test_one_hour_cache_writes_use_the_1h_rate():
    # claude-sonnet-4-5: input 3, 5m write 3.75, 1h write 6 per 1M
    usage = Usage(input_tokens=1000 + 800 + 10, cache_write_tokens=1800, cache_write_1h_tokens=1000)
    expected = 10 * D(3) + 800 * D("3.75") + 1000 * D(6)
    assert cost_picousd(usage, bundled("anthropic", "claude-sonnet-4-5")) == expected * 10**6


def test_missing_cache_rates_fall_back_in_order():
    price = Price(input_per_mtok=D(2), output_per_mtok=D(8))
    only_5m = Price(input_per_mtok=D(2), output_per_mtok=D(8), cache_write_5m_per_mtok=D("2.5"))
    usage = Usage(
        input_tokens=30, cached_input_tokens=10, cache_write_tokens=20, cache_write_1h_tokens=5
    )
    assert cost_picousd(usage, price) == 30 * 2 * 10**6  # everything at the input rate
    assert cost_picousd(usage, only_5m) == (10 * 2 + 20 * D("2.5")) * 10**6  # 1h -> 5m rate


def test_a_zero_cache_rate_is_a_price_not_a_fallback():
    price = Price(input_per_mtok=D(1), output_per_mtok=D(1), cached_input_per_mtok=D(0))
    assert cost_picousd(Usage(input_tokens=100, cached_input_tokens=100), price) == 0


def test_a_reasoning_rate_applies_only_to_reasoning_tokens():
    price = Price(input_per_mtok=D(1), output_per_mtok=D(4), reasoning_per_mtok=D(3))
    usage = Usage(output_tokens=100, reasoning_tokens=60)
    assert cost_picousd(usage, price) == (40 * 4 + 60 * 3) * 10**6


def test_without_a_reasoning_rate_reasoning_is_output():
    price = Price(input_per_mtok=D(1), output_per_mtok=D(4))
    assert cost_picousd(Usage(output_tokens=100, reasoning_tokens=60), price) == 400 * 10**6


# --- long-context tiers -----------------------------------------------------------------


def test_above_the_threshold_every_rate_switches_to_the_tier():
    price = bundled("gemini", "gemini-2.5-pro")  # >200k: in 2.5, out 15, cache read 0.25

    def usage(prompt):
        return Usage(input_tokens=prompt, cached_input_tokens=100_000, output_tokens=1000)

    at = cost_picousd(usage(200_000), price)
    above = cost_picousd(usage(200_001), price)
    assert at == (100_000 * D("1.25") + 100_000 * D("0.125") + 1000 * 10) * 10**6
    assert above == (100_001 * D("2.5") + 100_000 * D("0.25") + 1000 * 15) * 10**6


def test_xai_bills_its_tier_from_the_threshold_itself():
    price = bundled("xai", "grok-4.3")  # standard 1.25 / 2.5, from 200k 2.5 / 5
    assert cost_picousd(Usage(input_tokens=199_999), price) == 199_999 * D("1.25") * 10**6
    assert cost_picousd(Usage(input_tokens=200_000), price) == 200_000 * D("2.5") * 10**6


def test_the_highest_crossed_tier_wins():
    price = Price(
        input_per_mtok=D(1),
        output_per_mtok=D(1),
        tiers=(
            Tier(threshold_tokens=10, input_per_mtok=D(2), output_per_mtok=D(1)),
            Tier(threshold_tokens=20, input_per_mtok=D(3), output_per_mtok=D(1)),
        ),
    )
    assert [cost_picousd(Usage(input_tokens=n), price) // 10**6 for n in (10, 11, 21)] == [
        10,
        22,
        63,
    ]


# --- service tiers and batch ------------------------------------------------------------


@pytest.mark.parametrize(
    ("service_tier", "input_rate", "output_rate"),
    [
        (None, "0.25", "2"),
        ("default", "0.25", "2"),
        ("scale", "0.25", "2"),
        ("flex", "0.125", "1"),
        ("priority", "0.45", "3.6"),
        (" PRIORITY ", "0.45", "3.6"),
    ],
)
def test_service_tier_selects_the_flex_or_priority_price(service_tier, input_rate, output_rate):
    usage = Usage(input_tokens=1000, output_tokens=1000)
    cost = cost_picousd(usage, bundled("openai", "gpt-5-mini"), service_tier=service_tier)
    assert cost == 1000 * (D(input_rate) + D(output_rate)) * 10**6


def test_a_service_tier_the_model_lacks_bills_the_standard_price():
    price = bundled("anthropic", "claude-haiku-4-5")
    usage = Usage(input_tokens=1000, output_tokens=1000)
    assert cost_picousd(usage, price, service_tier="flex") == cost_picousd(usage, price)


def test_batch_selects_the_batch_price_and_wins_over_a_service_tier():
    price = bundled("openai", "gpt-5-mini")  # batch 0.125 / 1
    usage = Usage(input_tokens=1000, output_tokens=1000)
    expected = 1000 * (D("0.125") + 1) * 10**6
    assert cost_picousd(usage, price, batch=True) == expected
    assert cost_picousd(usage, price, batch=True, service_tier="priority") == expected
    assert select_price(price, batch=True) is price.batch


def test_priority_tier_above_the_threshold():
    price = bundled("gemini", "gemini-2.5-pro")  # priority >200k: in 4.5, out 27
    usage = Usage(input_tokens=300_000, output_tokens=1000)
    cost = cost_picousd(usage, price, service_tier="priority")
    assert cost == (300_000 * D("4.5") + 1000 * 27) * 10**6


# --- exactness --------------------------------------------------------------------------


def test_costs_are_exact_integers_for_huge_counts():
    price = Price(input_per_mtok=D("0.075"), output_per_mtok=D("0.000003"))
    usage = Usage(input_tokens=10**30 + 7, output_tokens=10**25 + 1)
    cost = cost_picousd(usage, price)
    exact = Fraction(10**30 + 7) * Fraction(75, 1000) * 10**6 + Fraction(10**25 + 1) * 3
    assert type(cost) is int and cost == exact
    assert format_usd(cost) == f"{cost // 10**12}.{cost % 10**12:012d}".rstrip("0")


@pytest.mark.parametrize(
    ("rate", "expected"), [("0.0000005", 1), ("0.00000049", 0), ("0.0000015", 2)]
)
def test_only_the_sub_picodollar_remainder_is_rounded_half_up(rate, expected):
    price = Price(input_per_mtok=D(rate), output_per_mtok=D(0))
    assert cost_picousd(Usage(input_tokens=1), price) == expected


def test_a_float_never_becomes_money():
    with pytest.raises(TypeError):
        Price(input_per_mtok=2.5, output_per_mtok=D(1))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        cost_picousd(Usage(input_tokens=1.0), bundled("openai", "gpt-4o"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        format_usd(1.5)  # type: ignore[arg-type]


def test_inconsistent_counts_are_clamped_not_billed_negative():
    price = Price(input_per_mtok=D(1), output_per_mtok=D(2), reasoning_per_mtok=D(3))
    usage = Usage(
        input_tokens=10,
        cached_input_tokens=8,
        cache_write_tokens=5,
        cache_write_1h_tokens=9,
        output_tokens=4,
        reasoning_tokens=6,
    )
    # no uncached input; 8 reads and 5 writes (all 1h) at 1; 4 reasoning tokens at 3
    assert cost_picousd(usage, price) == (8 + 5 + 4 * 3) * 10**6


def test_negative_counts_are_refused():
    with pytest.raises(ValueError):
        cost_picousd(Usage(output_tokens=-1), bundled("openai", "gpt-4o"))


def test_empty_usage_costs_nothing():
    assert cost_picousd(Usage(), bundled("openai", "gpt-4o")) == 0


# --- formatting -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("picousd", "text"),
    [
        (0, "0"),
        (1, "0.000000000001"),
        (160_000, "0.00000016"),
        (127_200_000, "0.0001272"),
        (10**12, "1"),
        (1_500_000_000_000, "1.5"),
        (12_345 * 10**12, "12345"),
        (10**40 + 1, "10000000000000000000000000000.000000000001"),
        (-2_500_000_000_000, "-2.5"),
    ],
)
def test_format_usd_is_a_plain_decimal_string(picousd, text):
    assert format_usd(picousd) == text
    assert picousd_to_usd(picousd) == D(text)
