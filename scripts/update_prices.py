#!/usr/bin/env python3
"""Regenerate addon/pricing/prices.json from LiteLLM's price table (MIT licensed).

Usage:
    .venv/bin/python scripts/update_prices.py SOURCE [--date YYYY-MM-DD] [--out PATH]

SOURCE is a litellm wheel (``pip download --no-deps litellm``; the table is read from
``litellm/model_prices_and_context_window_backup.json`` inside it) or that JSON file itself.
The output depends only on SOURCE and --date (default: today, UTC); keys are sorted.

Kept: chat, completion, embedding and responses entries of the providers below that have an
input price (and an output price, except embeddings, whose output is free). Per-token floats
become exact decimal strings per million tokens (``Decimal(repr(x)) * 1000000``). Tier keys
``*_above_<N>k_tokens`` become ``tiers``; ``*_flex``, ``*_priority`` and ``*_batches`` keys
become ``flex``, ``priority`` and ``batch``. Anything else (audio, images, off-peak windows,
data-residency multipliers, 12-hour cache writes) is left out.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import zipfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

MEMBER = "litellm/model_prices_and_context_window_backup.json"
OUT = Path(__file__).resolve().parent.parent / "addon" / "pricing" / "prices.json"
PROVIDERS = {
    **{p: p for p in ("openai", "anthropic", "gemini", "azure", "mistral", "groq", "deepseek")},
    **{p: p for p in ("xai", "openrouter", "together_ai", "fireworks_ai")},
    "text-completion-openai": "openai",  # legacy /v1/completions models
    "fireworks_ai-embedding-models": "fireworks_ai",
}
MODES = {"chat", "completion", "embedding", "responses"}
RATES = {
    "input_cost_per_token": "input",
    "output_cost_per_token": "output",
    "cache_read_input_token_cost": "cached_input",
    "input_cost_per_token_cache_hit": "cache_hit",  # DeepSeek; used only if no cache-read key
    "cache_creation_input_token_cost_above_1hr": "cache_write_1h",
    "cache_creation_input_token_cost": "cache_write_5m",
    "output_cost_per_reasoning_token": "reasoning",
}
VARIANTS = {"batches": "batch", "flex": "flex", "priority": "priority"}
KEY = re.compile(
    rf"^({'|'.join(RATES)})(?:_above_(\d+)(k?)_tokens)?(?:_({'|'.join(VARIANTS)}))?$",
)
INCLUSIVE_TIERS = {"xai"}  # LiteLLM bills xAI's tier from the threshold itself (>=)
TIER_RULE = (
    "a tier applies when input_tokens (cache included) > threshold; xAI bills its tier from"
    " the threshold itself, so xAI thresholds are stored one lower"
)


def per_mtok(value: object, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what}: not a number: {value!r}")
    rate = (Decimal(repr(value)) * 1000000).normalize()
    if rate < 0:
        raise ValueError(f"{what}: negative price {value!r}")
    return format(rate, "f")


def convert(key: str, raw: dict[str, Any], provider: str) -> dict[str, Any]:
    parts: dict[str, dict[str, Any]] = {}  # "" for the standard price, else a variant name
    for field, value in raw.items():
        m = KEY.match(field)
        if m is None or value is None:
            continue
        name, number, k, suffix = m.groups()
        part = parts.setdefault(VARIANTS[suffix] if suffix else "", {"tiers": {}})
        rates = part
        if number is not None:
            threshold = int(number) * (1000 if k else 1)
            threshold -= 1 if provider in INCLUSIVE_TIERS else 0
            rates = part["tiers"].setdefault(threshold, {"threshold": threshold})
        rates[RATES[name]] = per_mtok(value, f"{key}.{field}")
    base = parts.pop("", {"tiers": {}})
    if raw.get("mode") == "embedding":
        base.setdefault("output", "0")
    entry: dict[str, Any] = {"provider": provider, **tidy(base)}
    entry.update({name: tidy(part) for name, part in parts.items()})
    return entry


def tidy(part: dict[str, Any]) -> dict[str, Any]:
    tiers = part.pop("tiers")
    for rates in [part, *tiers.values()]:
        hit = rates.pop("cache_hit", None)
        if hit is not None:
            rates.setdefault("cached_input", hit)
    if tiers:
        part["tiers"] = [tiers[t] for t in sorted(tiers)]
    return part


def select(table: dict[str, Any]) -> dict[str, Any]:
    models = {}
    for key, raw in table.items():
        if not isinstance(raw, dict) or raw.get("mode") not in MODES:
            continue
        provider = PROVIDERS.get(raw.get("litellm_provider", ""))
        if provider is None or raw.get("input_cost_per_token") is None:
            continue
        if raw.get("output_cost_per_token") is None and raw.get("mode") != "embedding":
            continue
        models[key] = convert(key, raw, provider)
    return models


def read_source(path: Path) -> tuple[bytes, str]:
    if path.suffix == ".whl":
        version = path.name.split("-")[1]
        with zipfile.ZipFile(path) as wheel:
            data = wheel.read(MEMBER)
        return data, f"litellm {version} wheel ({path.name}): {MEMBER}"
    return path.read_bytes(), f"LiteLLM price table: {path.name}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a litellm wheel or its price JSON")
    parser.add_argument("--date", default=datetime.now(UTC).date().isoformat())
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    data, source = read_source(args.source)
    models = select(json.loads(data))
    document = {
        "source": source,
        "source_sha256": hashlib.sha256(data).hexdigest(),
        "generated_at": args.date,
        "license": "MIT (LiteLLM)",
        "unit": "USD per 1M tokens",
        "tier_rule": TIER_RULE,
        "models": models,
    }
    text = json.dumps(document, indent=1, sort_keys=True, ensure_ascii=True) + "\n"
    try:  # refuse to write a table the gateway could not load
        from addon.pricing.table import PriceBook

        PriceBook.from_table(json.loads(text))
    except ImportError:
        print("warning: addon not importable; output not validated", file=sys.stderr)
    args.out.write_text(text, encoding="utf-8")
    print(f"{len(models)} models, {len(text.encode())} bytes -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
