"""The bundled table holds every price the shipped LiteLLM source lists for our providers.

``scripts/data/`` ships the source entries of the supported providers (extracts written by
``scripts/update_prices.py --extract``): the table must be exactly what the generator makes
of them, every priced entry must be in it or left out for a stated, allowed reason, and the
gateway's lookup must reach every entry under the name a client sends.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from addon.pricing.codec import price_from_bundled
from addon.pricing.media import media_price_from_json
from addon.pricing.table import PriceBook

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "scripts" / "data"
TABLE = json.loads((ROOT / "addon" / "pricing" / "prices.json").read_text(encoding="utf-8"))
NOT_METERED_MODES = {
    "realtime",  # websocket sessions
    "video_generation",
    "ocr",
    "rerank",
    "search",
    "moderation",  # free
    "evaluation",
    "decisions",
    "None",  # Fireworks' size-class placeholders, not models
}
ALLOWED_REASONS = re.compile(
    rf"^(mode ({'|'.join(NOT_METERED_MODES)}) is not metered|no standard (input|output) price"
    r"|no nonzero media rate)$"
)
TOLLKEEPER_NAME = {"together_ai": "together", "fireworks_ai": "fireworks"}


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "update_prices", ROOT / "scripts/update_prices.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _source(name: str) -> dict[str, Any]:
    [path] = DATA.glob(f"litellm-{name}-supported.json.gz")
    return json.loads(gzip.decompress(path.read_bytes()))


def _version(field: str) -> str:
    return TABLE[field].split()[1]  # "litellm 1.110.2 wheel (...)"


@pytest.fixture(scope="module")
def source() -> dict[str, Any]:
    return _source(_version("source"))


def test_the_shipped_extracts_are_of_the_sources_the_table_names() -> None:
    assert TABLE["source"].startswith("litellm ") and TABLE["retired_source"].startswith("litellm ")
    assert _source(_version("source")) and _source(_version("retired_source"))


def test_the_table_is_exactly_what_the_generator_makes_of_the_shipped_sources(gen, source):
    models, media, _ = gen.select_all(source)
    gen.add_retired(models, media, gen.select_all(_source(_version("retired_source"))), "x")
    for section in (models, media):
        for entry in section.values():
            if "retired" in entry:
                entry["retired"] = TABLE["retired_source"]
    assert TABLE["models"] == models
    assert TABLE["media"] == media


def test_every_priced_source_entry_is_kept_or_left_out_for_an_allowed_reason(gen, source):
    models, media, skipped = gen.select_all(source)
    for key, raw in source.items():
        if gen.PROVIDERS.get(raw.get("litellm_provider", "")) is None:
            assert "alias_of" in raw, key  # the extract holds our providers and aliases only
            assert key in models or key in media or raw["alias_of"] in skipped, key
            continue
        if key in models or key in media:
            continue
        assert ALLOWED_REASONS.match(skipped[key]), f"{key}: {skipped[key]}"
        if skipped[key].startswith("no standard"):
            assert raw.get("input_cost_per_token") is None or (
                raw.get("output_cost_per_token") is None and raw.get("mode") != "embedding"
            )


def test_lookup_reaches_every_bundled_entry_by_its_name() -> None:
    book = PriceBook.bundled()
    models = TABLE["models"]
    for key, entry in models.items():
        provider = TOLLKEEPER_NAME.get(entry["provider"], entry["provider"])
        # a bare name the provider's own prefixed entry also lists resolves to that entry
        # (deepseek-chat, retired, vs deepseek/deepseek-chat): the current one wins
        shadow = models.get(f"{entry['provider']}/{key}")
        expected = shadow if shadow is not None else entry
        assert book.lookup(provider, key) == price_from_bundled(expected, key), key
    for key, entry in TABLE["media"].items():
        provider = TOLLKEEPER_NAME.get(entry["provider"], entry["provider"])
        assert book.lookup_media(provider, key) == media_price_from_json(entry, key), key


@pytest.mark.parametrize(
    ("model", "same_as"),
    [
        ("claude-haiku-latest", "claude-haiku-5-5"),  # an alias_of entry
        ("claude-sonnet-latest", "claude-sonnet-5-5"),
    ],
)
def test_alias_models_are_priced_as_their_target(model: str, same_as: str) -> None:
    book = PriceBook.bundled()
    assert book.lookup("anthropic", model) is not None
    assert book.lookup("anthropic", model) == book.lookup("anthropic", same_as)


def test_retired_claude_models_keep_their_last_listed_price() -> None:
    price = PriceBook.bundled().lookup("anthropic", "claude-3-5-haiku-latest")
    assert price is not None
    assert (str(price.input_per_mtok), str(price.output_per_mtok)) == ("1", "5")
    assert "retired" in TABLE["models"]["claude-3-5-haiku-latest"]
