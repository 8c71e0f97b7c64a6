#!/usr/bin/env python3
"""Regenerate addon/pricing/prices.json from LiteLLM's price table (MIT licensed).

Usage:
    .venv/bin/python scripts/update_prices.py SOURCE [--date YYYY-MM-DD] [--out PATH]
        [--report] [--extract scripts/data/litellm-<version>-supported.json.gz]
        [--retired OLDER_SOURCE [--retired-extract PATH]]

SOURCE is a litellm wheel (``pip download --no-deps litellm``; the table is read from
``litellm/model_prices_and_context_window_backup.json`` inside it), that JSON file itself, or
an extract (``.json.gz``) that ``--extract`` wrote. The repository ships the extract of the
source the bundled table was made from, ``scripts/data/``; a test checks that the table holds
every entry of it that it should.
The output depends only on SOURCE and --date (default: today, UTC); keys are sorted.

Kept, for the providers below:

- ``models``: chat, completion, embedding and responses entries that have an input price (and
  an output price, except embeddings, whose output is free). Per-token floats become exact
  decimal strings per million tokens (``Decimal(repr(x)) * 1000000``). Tier keys
  ``*_above_<N>k_tokens`` become ``tiers``; ``*_flex``, ``*_priority`` and ``*_batches`` keys
  become ``flex``, ``priority`` and ``batch``.
- ``media``: image_generation, audio_transcription and audio_speech entries with a nonzero
  rate, as the media rates of ``addon/pricing/media.py`` (per-token rates by modality per
  million tokens; ``per_image``, ``per_pixel`` and ``*_per_second`` in USD; ``per_mchar`` per
  million characters). Per-image prices keep LiteLLM's ``<quality>/<size>/<model>`` keys.
- retired models (``--retired OLDER_SOURCE``): entries of an older LiteLLM table that the
  source no longer lists, of providers it still lists (LiteLLM drops Anthropic models once
  they are retired, such as ``claude-3-5-haiku-latest``), kept at their last listed price with
  ``retired`` naming that table, so old records and late callers are priced, not unpriced.
- aliases: an ``{"alias_of": target}`` entry (``claude-haiku-latest``) gets its target's price
  under its own name, with ``alias_of`` noted, when the target is kept.

Left out: realtime, video, OCR, rerank and search entries, off-peak windows, data-residency
multipliers, 12-hour cache writes, output per-pixel rates, batch media rates. ``--report`` prints
every source entry of the providers above that is not kept, with the reason.
"""

from __future__ import annotations

import argparse
import gzip
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
MEDIA_MODES = {"image_generation", "audio_transcription", "audio_speech"}
MTOK, USD, MCHAR = 1000000, 1, 1000000
MEDIA_RATES = {  # LiteLLM field -> (media rate name, scale from USD per unit)
    "input_cost_per_token": ("text_input", MTOK),
    "cache_read_input_token_cost": ("text_cached_input", MTOK),
    "output_cost_per_token": ("text_output", MTOK),
    "input_cost_per_image_token": ("image_input", MTOK),
    "cache_read_input_image_token_cost": ("image_cached_input", MTOK),
    "output_cost_per_image_token": ("image_output", MTOK),
    "input_cost_per_audio_token": ("audio_input", MTOK),
    "output_cost_per_audio_token": ("audio_output", MTOK),
    "output_cost_per_image": ("per_image", USD),
    "input_cost_per_image": ("per_image", USD),  # wins over output_cost_per_image
    "input_cost_per_pixel": ("per_pixel", USD),
    "input_cost_per_second": ("input_per_second", USD),
    "output_cost_per_second": ("output_per_second", USD),
    "input_cost_per_character": ("per_mchar", MCHAR),
}
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


def per_mtok(value: object, what: str, scale: int = MTOK) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what}: not a number: {value!r}")
    rate = (Decimal(repr(value)) * scale).normalize()
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


def convert_media(key: str, raw: dict[str, Any], provider: str) -> dict[str, Any] | None:
    rates: dict[str, str] = {}
    for field, (name, scale) in MEDIA_RATES.items():
        value = raw.get(field)
        if value is not None:
            rates[name] = per_mtok(value, f"{key}.{field}", scale)
    if not any(Decimal(v) > 0 for v in rates.values()):
        return None  # only zeros: LiteLLM's placeholder, not a price
    return {"provider": provider, **rates}


def skip_reason(raw: dict[str, Any]) -> str | None:
    """Why a supported provider's text entry is not kept (None: it is kept)."""
    if raw.get("mode") not in MODES:
        return f"mode {raw.get('mode')} is not metered"
    if raw.get("input_cost_per_token") is None:
        return "no standard input price"
    if raw.get("output_cost_per_token") is None and raw.get("mode") != "embedding":
        return "no standard output price"
    return None


def select_all(table: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """(models, media, skipped: source key -> reason) for the supported providers."""
    models: dict[str, Any] = {}
    media: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for key, raw in table.items():
        if not isinstance(raw, dict):
            continue
        provider = PROVIDERS.get(raw.get("litellm_provider", ""))
        if provider is None:
            continue
        if raw.get("mode") in MEDIA_MODES:
            entry = convert_media(key, raw, provider)
            if entry is None:
                skipped[key] = "no nonzero media rate"
            else:
                media[key] = entry
            continue
        reason = skip_reason(raw)
        if reason is None:
            models[key] = convert(key, raw, provider)
        else:
            skipped[key] = reason
    add_aliases(table, models, media)
    return models, media, skipped


def add_aliases(table: dict[str, Any], models: dict[str, Any], media: dict[str, Any]) -> None:
    for key, raw in table.items():
        target = raw.get("alias_of") if isinstance(raw, dict) else None
        if not isinstance(target, str) or key in models or key in media:
            continue
        for section in (models, media):
            if target in section:
                section[key] = {**section[target], "alias_of": target}


def add_retired(
    models: dict[str, Any],
    media: dict[str, Any],
    older: tuple[dict[str, Any], dict[str, Any], dict[str, str]],
    source: str,
) -> None:
    """Add the older table's entries that the newer one lacks, marked ``retired`` — only of
    providers the newer table still lists (LiteLLM 1.110 dropped OpenRouter's resale prices
    altogether: those are not retired models, and stale)."""
    known = {k.lower() for k in (*models, *media)}
    listed = {e["provider"] for e in (*models.values(), *media.values())}
    for section, old in ((models, older[0]), (media, older[1])):
        for key, entry in old.items():
            if key.lower() not in known and entry["provider"] in listed:
                section[key] = {**entry, "retired": source}


def select(table: dict[str, Any]) -> dict[str, Any]:
    """The token-priced models (see ``select_all``)."""
    return select_all(table)[0]


def extract(table: dict[str, Any]) -> bytes:
    """The source entries of the supported providers (and their aliases), gzipped and
    deterministic: what ``scripts/data/`` ships so tests can check coverage offline."""
    kept = {
        k: v
        for k, v in table.items()
        if isinstance(v, dict)
        and (
            v.get("litellm_provider") in PROVIDERS
            or table.get(str(v.get("alias_of")), {}).get("litellm_provider") in PROVIDERS
        )
    }
    text = json.dumps(kept, indent=0, sort_keys=True, ensure_ascii=True) + "\n"
    return gzip.compress(text.encode(), mtime=0)


def read_source(path: Path) -> tuple[bytes, str]:
    if path.name.endswith(".json.gz"):
        return gzip.decompress(path.read_bytes()), f"LiteLLM price table extract: {path.name}"
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
    parser.add_argument("--report", action="store_true", help="list source entries left out")
    parser.add_argument("--extract", type=Path, help="also write the supported providers' source")
    parser.add_argument("--retired", type=Path, help="an older source for models since dropped")
    parser.add_argument("--retired-extract", type=Path, help="also write its extract")
    args = parser.parse_args(argv)
    data, source = read_source(args.source)
    table = json.loads(data)
    models, media, skipped = select_all(table)
    if args.extract:
        args.extract.write_bytes(extract(table))
    retired: dict[str, str] = {}
    if args.retired:
        old_data, old_source = read_source(args.retired)
        old_table = json.loads(old_data)
        add_retired(models, media, select_all(old_table), old_source)
        retired = {
            "retired_source": old_source,
            "retired_source_sha256": hashlib.sha256(old_data).hexdigest(),
        }
        if args.retired_extract:
            args.retired_extract.write_bytes(extract(old_table))
    if args.report:
        for key in sorted(skipped):
            print(f"{key}: {skipped[key]}")
    document = {
        "source": source,
        "source_sha256": hashlib.sha256(data).hexdigest(),
        "generated_at": args.date,
        "license": "MIT (LiteLLM)",
        "unit": "USD per 1M tokens",
        "tier_rule": TIER_RULE,
        "models": models,
        "media": media,
        **retired,
        "media_unit": "per-token rates per 1M tokens; per_image, per_pixel, *_per_second in USD;"
        " per_mchar per 1M characters",
    }
    text = json.dumps(document, indent=1, sort_keys=True, ensure_ascii=True) + "\n"
    try:  # refuse to write a table the gateway could not load
        from addon.pricing.table import PriceBook

        PriceBook.from_table(json.loads(text))
    except ImportError:
        print("warning: addon not importable; output not validated", file=sys.stderr)
    args.out.write_text(text, encoding="utf-8")
    print(
        f"{len(models)} models, {len(media)} media prices, {len(text.encode())} bytes"
        f" -> {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
