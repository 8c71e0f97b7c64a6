import json
from decimal import Decimal
from importlib import resources

import pytest

from addon.pricing.price import Price
from addon.pricing.table import PriceBook, Tier

D = Decimal


def _raw_table() -> dict:
    text = resources.files("addon.pricing").joinpath("prices.json").read_text(encoding="utf-8")
    return json.loads(text)


def _book(models: dict) -> PriceBook:
    return PriceBook.from_table({"models": models})


# --- the bundled file -------------------------------------------------------------------


def test_bundled_table_carries_its_provenance():
    table = _raw_table()
    assert "litellm 1.110.2" in table["source"]
    assert "model_prices_and_context_window_backup.json" in table["source"]
    assert table["license"] == "MIT (LiteLLM)"
    assert table["unit"] == "USD per 1M tokens"
    assert len(table["source_sha256"]) == 64
    assert len(table["generated_at"]) == 10 and table["generated_at"][4] == "-"
    assert table["tier_rule"]


def test_bundled_table_is_small_and_only_has_the_gateway_providers():
    path = resources.files("addon.pricing").joinpath("prices.json")
    assert len(path.read_bytes()) < 1_000_000
    providers = {entry["provider"] for entry in _raw_table()["models"].values()}
    allowed = {"openai", "anthropic", "gemini", "azure", "mistral", "groq", "deepseek", "xai"}
    allowed |= {"openrouter", "together_ai", "fireworks_ai"}
    assert providers <= allowed
    assert {"openai", "anthropic", "gemini", "azure", "mistral", "deepseek"} <= providers


def test_bundled_prices_are_decimal_strings_never_floats():
    def leaves(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key not in ("provider", "threshold", "alias_of", "retired"):
                    yield from leaves(value)
        elif isinstance(node, list):
            for item in node:
                yield from leaves(item)
        else:
            yield node

    values = [v for entry in _raw_table()["models"].values() for v in leaves(entry)]
    assert values and all(isinstance(v, str) for v in values)
    assert all("e" not in v.lower() and D(v) >= 0 for v in values)


def test_bundled_book_is_loaded_once():
    assert PriceBook.bundled() is PriceBook.bundled()


# providers.md §4.3: key, provider, input, cache read, cache write 5m, 1h, output, batch in/out
SECTION_4_3 = [
    ("gpt-4o", "openai", "2.5", "1.25", None, None, "10", ("1.25", "5")),
    ("gpt-4o-mini", "openai", "0.15", "0.075", None, None, "0.6", ("0.075", "0.3")),
    ("gpt-4.1", "openai", "2", "0.5", None, None, "8", ("1", "4")),
    ("gpt-4.1-mini", "openai", "0.4", "0.1", None, None, "1.6", ("0.2", "0.8")),
    ("gpt-4.1-nano", "openai", "0.1", "0.025", None, None, "0.4", ("0.05", "0.2")),
    ("gpt-5", "openai", "1.25", "0.125", None, None, "10", ("0.625", "5")),
    ("gpt-5-mini", "openai", "0.25", "0.025", None, None, "2", ("0.125", "1")),
    ("gpt-5-nano", "openai", "0.05", "0.005", None, None, "0.4", ("0.025", "0.2")),
    ("gpt-5.1", "openai", "1.25", "0.125", None, None, "10", ("0.625", "5")),
    ("o3", "openai", "2", "0.5", None, None, "8", ("1", "4")),
    ("o3-mini", "openai", "1.1", "0.55", None, None, "4.4", ("0.55", "2.2")),
    ("o4-mini", "openai", "1.1", "0.275", None, None, "4.4", ("0.55", "2.2")),
    ("o3-pro", "openai", "20", None, None, None, "80", ("10", "40")),
    ("text-embedding-3-small", "openai", "0.02", None, None, None, "0", ("0.01", "0")),
    ("text-embedding-3-large", "openai", "0.13", None, None, None, "0", ("0.065", "0")),
    ("claude-opus-4-5", "anthropic", "5", "0.5", "6.25", "10", "25", ("2.5", "12.5")),
    ("claude-opus-4-6", "anthropic", "5", "0.5", "6.25", "10", "25", ("2.5", "12.5")),
    ("claude-opus-4-7", "anthropic", "5", "0.5", "6.25", "10", "25", ("2.5", "12.5")),
    ("claude-sonnet-4-5", "anthropic", "3", "0.3", "3.75", "6", "15", ("1.5", "7.5")),
    ("claude-sonnet-4-6", "anthropic", "3", "0.3", "3.75", "6", "15", ("1.5", "7.5")),
    ("claude-haiku-4-5", "anthropic", "1", "0.1", "1.25", "2", "5", ("0.5", "2.5")),
    ("gemini/gemini-2.5-pro", "gemini", "1.25", "0.125", None, None, "10", ("0.625", "5")),
    ("gemini/gemini-2.5-flash", "gemini", "0.3", "0.03", None, None, "2.5", ("0.15", "1.25")),
    ("gemini/gemini-2.5-flash-lite", "gemini", "0.1", "0.01", None, None, "0.4", ("0.05", "0.2")),
    ("mistral/mistral-large-latest", "mistral", "0.5", "0.05", None, None, "1.5", None),
    ("mistral/mistral-medium-latest", "mistral", "1.5", "0.15", None, None, "7.5", None),
    ("mistral/mistral-small-latest", "mistral", "0.15", "0.015", None, None, "0.6", None),
    ("deepseek/deepseek-chat", "deepseek", "0.28", "0.028", "0", None, "0.42", None),
    ("deepseek/deepseek-reasoner", "deepseek", "0.28", "0.028", None, None, "0.42", None),
]


@pytest.mark.parametrize(
    ("key", "provider", "inp", "read", "w5m", "w1h", "out", "batch"),
    SECTION_4_3,
    ids=[row[0] for row in SECTION_4_3],
)
def test_bundled_price_matches_providers_md_4_3(key, provider, inp, read, w5m, w1h, out, batch):
    entries = {model: (prov, price) for model, prov, price, _ in PriceBook.bundled().entries()}
    found_provider, price = entries[key]
    assert found_provider == provider

    def dec(text):
        return None if text is None else D(text)

    assert price.input_per_mtok == D(inp)
    assert price.output_per_mtok == D(out)
    assert price.cached_input_per_mtok == dec(read)
    assert price.cache_write_5m_per_mtok == dec(w5m)
    assert price.cache_write_1h_per_mtok == dec(w1h)
    if batch is None:
        assert price.batch is None
    else:
        assert price.batch is not None
        assert (price.batch.input_per_mtok, price.batch.output_per_mtok) == tuple(map(D, batch))


def test_gemini_2_5_pro_has_the_4_3_long_context_tier():
    price = PriceBook.bundled().lookup("gemini", "gemini-2.5-pro")
    assert price is not None
    (tier,) = price.tiers
    assert tier.threshold_tokens == 200_000
    assert (tier.input_per_mtok, tier.output_per_mtok) == (D("2.5"), D("15"))


# --- lookup against the real table ------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "model", "key"),
    [
        ("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("openai", "o4-mini-2025-04-16", "o4-mini"),
        ("openai", "gpt-5-mini-2025-08-07", "gpt-5-mini"),
        ("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("anthropic", "claude-haiku-4-5", "claude-haiku-4-5"),
        ("gemini", "gemini-2.5-flash", "gemini/gemini-2.5-flash"),
        ("gemini", "models/gemini-2.5-flash", "gemini/gemini-2.5-flash"),
        ("gemini", "gemini/gemini-2.5-flash", "gemini/gemini-2.5-flash"),
        ("deepseek", "deepseek-chat", "deepseek/deepseek-chat"),
        ("mistral", "mistral-large-latest", "mistral/mistral-large-latest"),
        ("xai", "grok-4.3", "xai/grok-4.3"),
        ("azure", "gpt-4o", "azure/gpt-4o"),
        ("openai", "GPT-4o-Mini", "gpt-4o-mini"),
        ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo", None),
        ("openai", "ft:gpt-4o-mini-2024-07-18:acme::abc123", "ft:gpt-4o-mini-2024-07-18"),
        ("openai", "gpt-3.5-turbo-instruct", "gpt-3.5-turbo-instruct"),
    ],
)
def test_lookup_resolves_provider_names_to_table_keys(provider, model, key):
    book = PriceBook.bundled()
    found = book.lookup(provider, model)
    assert found is not None
    if key is not None:
        assert found == {m: p for m, _, p, _ in book.entries()}[key]


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-nonexistent-9"),
        ("openai", None),
        ("openai", ""),
        ("anthropic", "gpt-4o"),  # a model of another provider
        ("my-vllm", "gpt-4o"),  # a self-hosted provider is never priced as OpenAI
        ("openrouter", "openai/gpt-4o"),  # LiteLLM 1.110.2 has no OpenRouter entries
    ],
)
def test_lookup_of_an_unknown_model_is_none_never_zero(provider, model):
    assert PriceBook.bundled().lookup(provider, model) is None


# --- lookup rules, on a small table -----------------------------------------------------


def _entry(provider, inp, out="1"):
    return {"provider": provider, "input": inp, "output": out}


SMALL = {
    "gpt-x": _entry("openai", "1"),
    "gpt-x-2025-01-01": _entry("openai", "2"),
    "claude-y": _entry("anthropic", "3"),
    "claude-y-latest": _entry("anthropic", "4"),
    "gemini/gem-z": _entry("gemini", "5"),
    "azure/gpt-x": _entry("azure", "6"),
    "gpt-only-openai": _entry("openai", "7"),
}


@pytest.mark.parametrize(
    ("provider", "model", "expected_input"),
    [
        ("openai", "gpt-x", "1"),
        ("openai", "gpt-x-2025-01-01", "2"),  # an exact snapshot beats the alias
        ("openai", "gpt-x-2026-02-02", "1"),  # an unknown snapshot falls back to the alias
        ("anthropic", "claude-y-20260101", "3"),
        ("anthropic", "claude-y-latest", "4"),  # an exact -latest key wins
        ("anthropic", "claude-z-latest", None),
        ("gemini", "models/gem-z-latest", "5"),
        ("gemini", "MODELS/GEM-Z", "5"),
        ("azure", "gpt-x", "6"),  # the azure/ key beats OpenAI's bare one
        ("azure", "gpt-only-openai", "7"),  # Azure falls back to OpenAI's list price
        ("openai", "azure/gpt-x", None),
        ("anthropic", "gpt-x", None),
    ],
)
def test_lookup_order(provider, model, expected_input):
    found = _book(SMALL).lookup(provider, model)
    if expected_input is None:
        assert found is None
    else:
        assert found is not None and found.input_per_mtok == D(expected_input)


# --- overrides --------------------------------------------------------------------------


def _price(inp: str) -> Price:
    return Price(input_per_mtok=D(inp), output_per_mtok=D("1"))


def test_overrides_win_over_the_bundled_price_and_its_snapshots():
    bundled = PriceBook.bundled()
    book = bundled.with_overrides({"gpt-4o-mini": _price("9")})
    assert book.lookup("openai", "gpt-4o-mini") == _price("9")
    assert book.lookup("openai", "gpt-4o-mini-2024-07-18") == _price("9")
    assert book.lookup("azure", "gpt-4o-mini") == _price("9")
    assert bundled.lookup("openai", "gpt-4o-mini") != _price("9")  # the original is unchanged


def test_overrides_price_models_the_table_does_not_know():
    book = PriceBook.bundled().with_overrides({"My-Finetune": _price("0.5")})
    assert book.lookup("my-vllm", "my-finetune") == _price("0.5")
    assert book.lookup("my-vllm", "my-finetune-2026-01-01") == _price("0.5")


def test_later_overrides_replace_earlier_ones():
    book = (
        _book(SMALL).with_overrides({"gpt-x": _price("8")}).with_overrides({"GPT-X": _price("9")})
    )
    assert book.lookup("openai", "gpt-x") == _price("9")


def test_overrides_must_be_prices():
    with pytest.raises(TypeError):
        _book(SMALL).with_overrides({"gpt-x": {"input": "1"}})  # type: ignore[dict-item]


def test_entries_list_every_model_with_its_source():
    book = _book(SMALL).with_overrides({"gpt-x": _price("8"), "groq/new": _price("2")})
    rows = book.entries()
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    by_model = {model: (provider, price, source) for model, provider, price, source in rows}
    assert by_model["gpt-x"] == ("openai", _price("8"), "override")
    assert by_model["groq/new"] == ("groq", _price("2"), "override")
    assert by_model["claude-y"] == ("anthropic", _price("3"), "bundled")
    assert len(rows) == len(SMALL) + 1


def test_bundled_entries_are_all_bundled():
    rows = PriceBook.bundled().entries()
    assert len(rows) > 900
    assert {source for *_, source in rows} == {"bundled"}


# --- loading ----------------------------------------------------------------------------


def test_table_tiers_become_sorted_tier_objects():
    book = _book(
        {
            "m": {
                "provider": "gemini",
                "input": "1",
                "output": "2",
                "tiers": [
                    {"threshold": 200000, "input": "2"},
                    {"threshold": 128000, "input": "1.5"},
                ],
            }
        }
    )
    price = book.lookup("gemini", "m")
    assert price is not None
    assert price.tiers == (
        Tier(threshold_tokens=128000, input_per_mtok=D("1.5"), output_per_mtok=D("2")),
        Tier(threshold_tokens=200000, input_per_mtok=D("2"), output_per_mtok=D("2")),
    )


@pytest.mark.parametrize(
    "table",
    [
        {},
        {"models": []},
        {"models": {"m": {"input": "1", "output": "1"}}},  # no provider
        {"models": {"m": {"provider": "openai", "output": "1"}}},  # no input price
        {"models": {"m": {"provider": "openai", "input": 1.5, "output": "1"}}},  # a float
        {"models": {"m": {"provider": "openai", "input": "-1", "output": "1"}}},
        {"models": {"m": {"provider": "openai", "input": "abc", "output": "1"}}},
        {"models": {"m": _entry("openai", "1"), "M": _entry("openai", "2")}},
    ],
)
def test_a_malformed_table_is_refused(table):
    with pytest.raises(ValueError):
        PriceBook.from_table(table)
