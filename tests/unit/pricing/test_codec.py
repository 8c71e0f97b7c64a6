from decimal import Decimal

import pytest

from addon.pricing.codec import format_rate, price_from_bundled
from addon.pricing.price import Price, Tier
from addon.pricing.table import PriceBook, price_from_json, price_to_json

D = Decimal


def test_every_bundled_price_round_trips_through_the_override_form():
    for model, _, price, _ in PriceBook.bundled().entries():
        stored = price_to_json(price)
        assert all(isinstance(v, str) for v in stored.values()), model
        assert price_from_json(stored) == price, model


def test_the_override_form_is_flat_decimal_strings():
    price = Price(
        input_per_mtok=D("2.50"),
        output_per_mtok=D("1E+1"),
        cached_input_per_mtok=D("0.0750"),
        tiers=(Tier(threshold_tokens=200000, input_per_mtok=D(5), output_per_mtok=D(15)),),
        batch=Price(input_per_mtok=D("1.25"), output_per_mtok=D(5)),
    )
    assert price_to_json(price) == {
        "input": "2.5",
        "output": "10",
        "cached_input": "0.075",
        "input_above_200000": "5",
        "output_above_200000": "15",
        "batch_input": "1.25",
        "batch_output": "5",
    }


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"input": "1"}, ValueError),  # no output rate
        ({"input": "1", "output": "1", "inptu": "1"}, ValueError),
        ({"input": "1", "output": "1", "batch_input_above_1k": "1"}, ValueError),
        ({"input": "1", "output": "-0.5"}, ValueError),
        ({"input": "1", "output": "NaN"}, ValueError),
        ({"input": "1", "output": "Infinity"}, ValueError),
        ({"input": "1", "output": "one"}, ValueError),
        ({"input": "1", "output": 1.5}, TypeError),
    ],
)
def test_bad_override_rows_are_refused(data, error):
    with pytest.raises(error):
        price_from_json(data)


def test_service_variants_inherit_what_they_do_not_set():
    price = price_from_json(
        {
            "input": "1",
            "output": "4",
            "cached_input": "0.1",
            "cache_write_5m": "1.25",
            "reasoning": "3",
            "flex_input": "0.5",
            "priority_input": "2",
            "priority_output": "8",
        }
    )
    assert price.flex == Price(
        input_per_mtok=D("0.5"),
        output_per_mtok=D(4),
        cached_input_per_mtok=D("0.1"),
        cache_write_5m_per_mtok=D("1.25"),
        reasoning_per_mtok=D(3),
    )
    # a variant with its own output rate bills reasoning at that rate, not the standard one
    assert price.priority is not None and price.priority.reasoning_per_mtok is None


def test_batch_cache_writes_fall_back_within_the_batch_price():
    price = price_from_json(
        {"input": "3", "output": "15", "cache_write_5m": "3.75", "cache_write_1h": "6"}
        | {"batch_input": "1.5", "batch_output": "7.5", "batch_cache_write_5m": "1.875"}
    )
    assert price.batch is not None
    assert price.batch.cache_write_5m_per_mtok == D("1.875")
    assert price.batch.cache_write_1h_per_mtok is None  # billed at the batch 5m rate (LiteLLM)
    assert price.batch.cache_write_1h == D("1.875")


def test_tiers_inherit_from_the_tier_below_but_not_reasoning():
    price = price_from_json(
        {"input": "1", "output": "2", "cached_input": "0.1", "reasoning": "2"}
        | {"input_above_100": "3", "output_above_200": "9", "reasoning_above_200": "9"}
    )
    low, high = price.tiers
    assert low == Tier(
        threshold_tokens=100,
        input_per_mtok=D(3),
        output_per_mtok=D(2),
        cached_input_per_mtok=D("0.1"),
    )
    assert high == Tier(
        threshold_tokens=200,
        input_per_mtok=D(3),
        output_per_mtok=D(9),
        cached_input_per_mtok=D("0.1"),
        reasoning_per_mtok=D(9),
    )


def test_service_variant_tiers_fall_back_to_the_standard_tier_and_batch_tiers_do_not():
    price = price_from_bundled(
        {
            "input": "2.5",
            "output": "15",
            "tiers": [{"threshold": 272000, "input": "5", "output": "22.5"}],
            "priority": {"input": "5", "output": "30"},
            "batch": {"input": "1.25", "output": "7.5"},
        }
    )
    assert price.priority is not None and price.batch is not None
    (tier,) = price.priority.tiers  # LiteLLM: priority above 272k uses the standard tier key
    assert (tier.input_per_mtok, tier.output_per_mtok) == (D(5), D("22.5"))
    assert price.batch.tiers == ()  # LiteLLM: batch tiers come only from *_batches keys


def test_a_variant_may_exist_only_as_tiers():
    price = price_from_bundled(
        {"input": "1", "output": "5", "batch": {"tiers": [{"threshold": 100000, "input": "0.25"}]}}
    )
    assert price.batch is not None
    assert (price.batch.input_per_mtok, price.batch.output_per_mtok) == (D(1), D(5))
    assert price.batch.tiers[0].input_per_mtok == D("0.25")


def test_prices_are_validated():
    with pytest.raises(ValueError):
        Price(input_per_mtok=D(-1), output_per_mtok=D(1))
    with pytest.raises(ValueError):
        Price(input_per_mtok=D("NaN"), output_per_mtok=D(1))
    with pytest.raises(ValueError):
        Price(
            input_per_mtok=D(1),
            output_per_mtok=D(1),
            tiers=(
                Tier(threshold_tokens=20, input_per_mtok=D(1), output_per_mtok=D(1)),
                Tier(threshold_tokens=10, input_per_mtok=D(1), output_per_mtok=D(1)),
            ),
        )
    inner = Price(input_per_mtok=D(1), output_per_mtok=D(1))
    with pytest.raises(ValueError):
        Price(
            input_per_mtok=D(1),
            output_per_mtok=D(1),
            batch=Price(input_per_mtok=D(1), output_per_mtok=D(1), flex=inner),
        )
    with pytest.raises(ValueError):
        inner.variant("scale")


@pytest.mark.parametrize(
    ("value", "text"),
    [("0.0750", "0.075"), ("1E+1", "10"), ("0E-7", "0"), ("2.5", "2.5"), ("0.000001", "0.000001")],
)
def test_format_rate(value, text):
    assert format_rate(D(value)) == text
