"""``tollkeeper prices``: the bundled price table and the operator's overrides.

Prices are exact decimal USD per million tokens. Overrides live in the database, win over the
bundled table, and every change is audited.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from addon.pricing.codec import format_rate
from addon.pricing.table import Price, PriceBook, price_from_json, price_to_json
from addon.store import prices_repo
from cli.context import App, UserError, pass_app
from cli.output import note, print_json, print_table
from cli.parse import PRICE, parse_decimal_price

# option name → flat override field (see addon/pricing/codec.py)
RATE_OPTIONS = {
    "input": "input",
    "output": "output",
    "cached_input": "cached_input",
    "cache_write_5m": "cache_write_5m",
    "cache_write_1h": "cache_write_1h",
    "reasoning": "reasoning",
}


def check_override(model: str, prices: Mapping[str, Any]) -> Price:
    """The Price an override row describes; UserError naming the model when it is invalid."""
    if not isinstance(prices, Mapping):
        raise UserError(f"{model}: expected an object of decimal strings")
    for field, value in prices.items():
        if not isinstance(value, str):
            raise UserError(f'{model}: {field} must be a decimal string like "2.50"')
        try:
            parse_decimal_price(value)
        except ValueError as e:
            raise UserError(f"{model}: {field}: {e}") from e
    try:
        return price_from_json(prices)
    except (TypeError, ValueError) as e:
        raise UserError(f"{model}: {e}") from e


def price_book(overrides: Mapping[str, Mapping[str, str]]) -> PriceBook:
    parsed = {model: check_override(model, prices) for model, prices in overrides.items()}
    return PriceBook.bundled().with_overrides(parsed)


def _rate(value: Decimal | None) -> str:
    return "-" if value is None else format_rate(value)


def _extras(price: Price) -> str:
    parts = ["tiers"] if price.tiers else []
    parts += [name for name in ("batch", "flex", "priority") if price.variant(name) is not None]
    return ",".join(parts) or "-"


@click.group()
def prices() -> None:
    """Model prices (USD per million tokens): the bundled table and your overrides."""


@prices.command(name="list")
@click.option("--model", "pattern", metavar="PATTERN", help="Only models matching this glob.")
@click.option("--provider", help="Only this provider's models.")
@click.option("--overrides", "only_overrides", is_flag=True, help="Only your overrides.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_app
def list_(
    app: App, pattern: str | None, provider: str | None, only_overrides: bool, as_json: bool
) -> None:
    """List known prices; SOURCE says whether a price is bundled or your override."""
    with app.session() as session:
        overrides = prices_repo.list_overrides(session=session)
    rows = price_book(overrides).entries()
    if pattern is not None:
        rows = [r for r in rows if fnmatch.fnmatch(r[0].lower(), pattern.lower())]
    if provider is not None:
        rows = [r for r in rows if r[1] == provider]
    if only_overrides:
        rows = [r for r in rows if r[3] == "override"]
    if as_json:
        print_json(
            [
                {"model": m, "provider": p, "source": s, "prices": price_to_json(price)}
                for m, p, price, s in rows
            ]
        )
        return
    if not rows:
        note("No prices match.")
        return
    headers = ["MODEL", "PROVIDER", "INPUT", "OUTPUT", "CACHED IN", "CACHE WR 5M"]
    headers += ["CACHE WR 1H", "REASONING", "ALSO", "SOURCE"]
    print_table(
        headers,
        [
            [
                m,
                p or "-",
                _rate(price.input_per_mtok),
                _rate(price.output_per_mtok),
                _rate(price.cached_input_per_mtok),
                _rate(price.cache_write_5m_per_mtok),
                _rate(price.cache_write_1h_per_mtok),
                _rate(price.reasoning_per_mtok),
                _extras(price),
                s,
            ]
            for m, p, price, s in rows
        ],
    )


@prices.command(name="set")
@click.argument("model")
@click.option("--input", "input_", type=PRICE, required=True, metavar="USD_PER_M", help="Input.")
@click.option("--output", type=PRICE, required=True, metavar="USD_PER_M", help="Output.")
@click.option("--cached-input", type=PRICE, metavar="USD_PER_M", help="Cache reads.")
@click.option("--cache-write-5m", type=PRICE, metavar="USD_PER_M", help="Cache writes, 5 min.")
@click.option("--cache-write-1h", type=PRICE, metavar="USD_PER_M", help="Cache writes, 1 hour.")
@click.option("--reasoning", type=PRICE, metavar="USD_PER_M", help="Reasoning tokens.")
@pass_app
def set_(app: App, /, model: str, input_: Decimal, **rates: Decimal | None) -> None:
    """Set the price of MODEL (USD per million tokens), overriding the bundled table.

    Rates not given fall back as the bundled table does: cache reads and writes to the input
    price, reasoning to the output price. Use a provider prefix ('groq/llama-3.3-70b') to
    price a model for one provider only. Costs already recorded keep their value; run
    'tollkeeper usage reprice' to recompute them.
    """
    model = model.strip()
    if not model:
        raise UserError("MODEL must not be empty")
    values = {"input": input_, **rates}
    override = {RATE_OPTIONS[k]: format_rate(v) for k, v in values.items() if v is not None}
    check_override(model, override)
    with app.session() as session:
        prices_repo.set_override(session=session, model=model, prices=override, actor=app.actor)
    note(f"Price of {model} set: " + ", ".join(f"{k}={v}" for k, v in override.items()) + ".")


@prices.command(name="unset")
@click.argument("model")
@pass_app
def unset(app: App, model: str) -> None:
    """Remove your price override of MODEL; the bundled price, if any, applies again.

    MODEL is the override's name as 'prices list --overrides' shows it. Costs already
    recorded keep their value; run 'tollkeeper usage reprice' to recompute them.
    """
    model = model.strip()
    if not model:
        raise UserError("MODEL must not be empty")
    with app.session() as session:
        prices_repo.delete_override(session=session, model=model, actor=app.actor)
    if _has_bundled_price(model):
        note(f"Override of {model} removed; the bundled price applies again.")
    else:
        note(f"Override of {model} removed; no bundled price: new usage of it is unpriced.")


def _has_bundled_price(model: str) -> bool:
    """Whether the bundled table prices ``model`` (a name, optionally provider-prefixed)."""
    book = PriceBook.bundled()
    provider, sep, name = model.partition("/")
    if sep and book.lookup(provider, name) is not None:
        return True
    return model.lower() in {m.lower() for m, *_ in book.entries()}


@prices.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_app
def import_(app: App, file: Path) -> None:
    """Set many prices at once from a JSON file.

    FILE holds a JSON object of model → {"input": "2.5", "output": "10", …}. Values are decimal
    strings in USD per million tokens; the fields are those of 'prices set'
    (input, output, cached_input, cache_write_5m, cache_write_1h, reasoning). Every price is
    checked before any is stored.
    """
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read {file}: {e}") from e
    except json.JSONDecodeError as e:
        raise UserError(f"{file} is not valid JSON: {e.msg} at line {e.lineno}") from e
    if not isinstance(data, dict) or not data:
        raise UserError(f"{file} must hold a non-empty JSON object of model → prices")
    for model, prices_ in data.items():
        if not model.strip():
            raise UserError(f"{file}: empty model name")
        check_override(model, prices_)
    with app.session() as session:
        for model, prices_ in data.items():
            prices_repo.set_override(
                session=session, model=model.strip(), prices=dict(prices_), actor=app.actor
            )
    note(f"Imported {len(data)} price(s) from {file}.")
