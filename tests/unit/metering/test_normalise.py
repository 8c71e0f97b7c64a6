"""Provider usage objects → normalised Usage; wrong types are ShapeErrors, not zeros."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from addon.metering.normalise import (
    MAX_TOKENS_PER_FIELD,
    ShapeError,
    anthropic_usage,
    count,
    gemini_usage,
    load_json,
    openai_usage,
    provider_cost,
    responses_usage,
)
from addon.metering.usage import Usage


@pytest.mark.parametrize(
    ("value", "expected"), [(None, 0), (0, 0), (7, 7), (7.0, 7), (Decimal("7.0"), 7)]
)
def test_count_accepts_integral_numbers(value: object, expected: int) -> None:
    assert count({"n": value}, "n") == expected
    assert count({}, "n") == 0


@pytest.mark.parametrize(
    "value",
    ["7", True, -1, 1.5, Decimal("1.5"), [], {}, float("inf"), float("nan"), Decimal("NaN"),
     MAX_TOKENS_PER_FIELD + 1, Decimal("1e12"), 1e12],
)  # fmt: skip
def test_count_rejects_everything_else(value: object) -> None:
    with pytest.raises(ShapeError):
        count({"n": value}, "n")


def test_count_accepts_the_cap_itself() -> None:
    assert count({"n": MAX_TOKENS_PER_FIELD}, "n") == MAX_TOKENS_PER_FIELD


@pytest.mark.parametrize("text", ["1e999999999", "-1e999999999", "1e-999999999"])
def test_count_refuses_giant_exponents_without_expanding_them(text: str) -> None:
    """``int(Decimal("1e999999999"))`` would build a billion-digit number (minutes of CPU
    on the thread that meters): the magnitude is checked first."""
    with pytest.raises(ShapeError):
        count(load_json(f'{{"n": {text}}}'), "n")


def test_openai_usage_includes_cache_reads_in_input() -> None:
    usage = {"prompt_tokens": 1200, "completion_tokens": 40,
             "prompt_tokens_details": {"cached_tokens": 1024}}  # fmt: skip
    assert openai_usage(usage) == Usage(1200, 1024, 0, 0, 40, 0)


@pytest.mark.parametrize(
    ("usage", "output"),
    [
        # xAI counts reasoning outside completion_tokens: total = prompt + completion + reasoning
        ({"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 317,
          "completion_tokens_details": {"reasoning_tokens": 300}}, 305),
        # OpenAI, DeepSeek, OpenRouter: reasoning is inside completion_tokens
        ({"prompt_tokens": 12, "completion_tokens": 305, "total_tokens": 317,
          "completion_tokens_details": {"reasoning_tokens": 300}}, 305),
        # OpenRouter can report more reasoning than completion, with a total that excludes it
        ({"prompt_tokens": 43, "completion_tokens": 10, "total_tokens": 53,
          "completion_tokens_details": {"reasoning_tokens": 11}}, 10),
        # no total: nothing shows the reasoning is outside, so it is not added
        ({"prompt_tokens": 12, "completion_tokens": 5,
          "completion_tokens_details": {"reasoning_tokens": 300}}, 5),
    ],
)  # fmt: skip
def test_openai_usage_adds_reasoning_counted_outside_the_completion(
    usage: dict[str, Any], output: int
) -> None:
    result = openai_usage(usage)
    assert (result.output_tokens, result.reasoning_tokens) == (
        output,
        usage["completion_tokens_details"]["reasoning_tokens"],
    )


def test_openai_usage_recognises_the_responses_shape() -> None:
    usage = {
        "input_tokens": 9,
        "output_tokens": 4,
        "output_tokens_details": {"reasoning_tokens": 2},
    }
    assert openai_usage(usage) == responses_usage(usage) == Usage(9, 0, 0, 0, 4, 2)


def test_anthropic_usage_adds_cache_reads_and_writes_to_input() -> None:
    usage = {"input_tokens": 25, "cache_creation_input_tokens": 1800,
             "cache_read_input_tokens": 100, "output_tokens": 12}  # fmt: skip
    assert anthropic_usage(usage) == Usage(1925, 100, 1800, 0, 12, 0)


def test_anthropic_cache_writes_from_the_ttl_split_when_the_total_is_missing() -> None:
    usage = {
        "input_tokens": 1,
        "output_tokens": 1,
        "cache_creation": {"ephemeral_5m_input_tokens": 30, "ephemeral_1h_input_tokens": 70},
    }
    assert anthropic_usage(usage) == Usage(101, 0, 100, 70, 1, 0)


def test_gemini_usage_adds_thoughts_outside_the_candidates_to_the_output() -> None:
    usage = {"promptTokenCount": 2100, "candidatesTokenCount": 40, "thoughtsTokenCount": 260,
             "cachedContentTokenCount": 2048, "totalTokenCount": 2400}  # fmt: skip
    assert gemini_usage(usage) == Usage(2100, 2048, 0, 0, 300, 260)


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        # candidates already include the thoughts: prompt + candidates == total
        ({"promptTokenCount": 10, "candidatesTokenCount": 50, "thoughtsTokenCount": 30,
          "totalTokenCount": 60}, Usage(10, 0, 0, 0, 50, 30)),
        # the same check counts tool-use prompt tokens (which are input)
        ({"promptTokenCount": 10, "toolUsePromptTokenCount": 5, "candidatesTokenCount": 50,
          "thoughtsTokenCount": 30, "totalTokenCount": 65}, Usage(15, 0, 0, 0, 50, 30)),
        ({"promptTokenCount": 10, "toolUsePromptTokenCount": 5, "candidatesTokenCount": 50,
          "thoughtsTokenCount": 30, "totalTokenCount": 95}, Usage(15, 0, 0, 0, 80, 30)),
        # without a total there is nothing to check: thoughts are added
        ({"promptTokenCount": 10, "candidatesTokenCount": 50, "thoughtsTokenCount": 30},
         Usage(10, 0, 0, 0, 80, 30)),
        # no thoughts: nothing to add either way
        ({"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15},
         Usage(10, 0, 0, 0, 5, 0)),
        # inconsistent counts cannot make reasoning exceed output
        ({"promptTokenCount": 1, "candidatesTokenCount": 2, "thoughtsTokenCount": 9,
          "totalTokenCount": 3}, Usage(1, 0, 0, 0, 2, 2)),
        ({}, Usage()),
    ],
)  # fmt: skip
def test_gemini_inclusive_candidates_are_not_counted_twice(
    usage: dict[str, Any], expected: Usage
) -> None:
    assert gemini_usage(usage) == expected


@pytest.mark.parametrize("field", ["promptTokenCount", "thoughtsTokenCount", "totalTokenCount"])
def test_gemini_usage_rejects_wrong_types(field: str) -> None:
    with pytest.raises(ShapeError):
        gemini_usage({"promptTokenCount": 1, "thoughtsTokenCount": 1, field: "1"})


def test_load_json_keeps_floats_exact_and_turns_deep_nesting_into_value_error() -> None:
    assert load_json(b'{"cost": 0.0000303}') == {"cost": Decimal("0.0000303")}
    with pytest.raises(ValueError, match="nested too deeply"):
        load_json("[" * 100_000)


@pytest.mark.parametrize(
    ("usage", "cost"),
    [({"cost": Decimal("0.0000303")}, "0.0000303"), ({"cost": 2}, "2"), ({"cost": 0.5}, "0.5"),
     ({"cost": "0.1"}, None), ({"cost": True}, None), ({}, None), ({"cost": -1}, None),
     ({"cost": Decimal("-0.5")}, None), ({"cost": float("nan")}, None),
     ({"cost": Decimal("Infinity")}, None), ({"cost": 10**12}, None), ({"cost": 10**5000}, None),
     ({"cost": Decimal("1e999999999")}, None), ({"cost": Decimal("1e-999999999")}, "0")],
)  # fmt: skip
def test_provider_cost(usage: dict[str, Any], cost: str | None) -> None:
    assert provider_cost(usage) == cost


def _outcome(load: Any, body: Any) -> tuple[str, Any]:
    try:
        return "value", load(body)
    except ValueError as e:
        return "ValueError", type(e).__name__


json_texts = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=10,
).map(json.dumps)


@settings(max_examples=300, deadline=None)
@given(
    body=st.binary()
    | json_texts
    | json_texts.map(str.encode)
    | st.tuples(json_texts, st.sampled_from(["utf-8-sig", "utf-16", "utf-32-be"])).map(
        lambda t: t[0].encode(t[1])
    )
    | json_texts.map(lambda t: "\ufeff" + t)
)
def test_load_json_is_json_loads_with_exact_decimals(body: bytes | str) -> None:
    """The shared decoder answers exactly as json.loads(body, parse_float=Decimal): the same
    value, or a ValueError of the same kind (a BOM before a str, bad bytes, bad JSON)."""
    expected = _outcome(lambda b: json.loads(b, parse_float=Decimal), body)
    assert _outcome(load_json, body) == expected
    assert _outcome(load_json, bytearray(body) if isinstance(body, bytes) else body) == expected
