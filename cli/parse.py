"""Parsing of command-line values: durations, dates, USD amounts, comma lists.

Pure functions that raise ``ValueError`` with a message fit for a user, plus the click
parameter types that wrap them (so a bad value becomes a one-line ``Error:``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import click

from addon.moments import parse_moment

PICOUSD_PER_USD = 10**12
MAX_USD_DECIMALS = 12
MAX_PICOUSD = 2**63 - 1  # what a BIGINT column holds (about 9.2 million USD)
MAX_DURATION = timedelta(days=36525)
_DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``45s`` (also ``2w``) → a positive timedelta."""
    m = _DURATION_RE.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a duration; use e.g. 30d, 12h, 90m or 45s")
    amount = int(m.group(1))
    if amount <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    seconds = amount * _UNIT_SECONDS[m.group(2).lower()]
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"duration {text!r} is too long (at most 100 years)")
    return timedelta(seconds=seconds)


def parse_usd(text: str) -> int:
    """A non-negative USD amount such as ``5``, ``12.50`` or ``0.000001`` → picodollars."""
    raw = text.strip().removeprefix("$")
    try:
        amount = Decimal(raw)
    except InvalidOperation as e:
        raise ValueError(f"{text!r} is not a USD amount") from e
    if not amount.is_finite():
        raise ValueError(f"{text!r} is not a USD amount")
    if amount < 0:
        raise ValueError(f"amount {text!r} must not be negative")
    if amount.adjusted() > 20:  # far too large; checked exactly below
        raise ValueError(f"amount {text!r} is too large")
    _, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)  # finite, checked above
    if exponent < -MAX_USD_DECIMALS:
        raise ValueError(f"amount {text!r} has more than {MAX_USD_DECIMALS} decimals")
    scale: int = 10 ** (exponent + MAX_USD_DECIMALS)  # exponent >= -12: an integer
    picousd = int("".join(map(str, digits)) or "0") * scale
    if picousd > MAX_PICOUSD:
        raise ValueError(f"amount {text!r} is too large")
    return picousd


def parse_decimal_price(text: str) -> Decimal:
    """A non-negative price in USD per million tokens, exactly as written."""
    parse_usd(text)  # same rules: finite, not negative, at most 12 decimals
    return Decimal(text.strip().removeprefix("$"))


def parse_list(text: str) -> tuple[str, ...]:
    """``a, b,,c`` → ``("a", "b", "c")``; an empty string is an empty list."""
    return tuple(p for p in (s.strip() for s in text.split(",")) if p)


def parse_status(text: str) -> int | str:
    """An HTTP status (``429``) or the word ``error`` (any failed request)."""
    raw = text.strip().lower()
    if raw == "error":
        return raw
    if raw.isdigit() and 100 <= int(raw) <= 599:
        return int(raw)
    raise ValueError(f"{text!r} is not an HTTP status (100-599) or 'error'")


class _ParsingType[T](click.ParamType[T]):
    """A click type around one of the parse functions above."""

    def parse(self, value: str) -> T:
        raise NotImplementedError

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> T:
        if not isinstance(value, str):
            return value  # type: ignore[no-any-return]  # already converted (a default)
        try:
            return self.parse(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


class DurationType(_ParsingType[timedelta]):
    name = "duration"

    def parse(self, value: str) -> timedelta:
        return parse_duration(value)


class MomentType(_ParsingType[datetime]):
    """A date or time; ``end_of_day`` makes a plain date inclusive (for ``--until``)."""

    name = "date"

    def __init__(self, *, end_of_day: bool = False) -> None:
        self.end_of_day = end_of_day

    def parse(self, value: str) -> datetime:
        return parse_moment(value, end_of_day=self.end_of_day)


class UsdType(_ParsingType[int]):
    name = "usd"

    def parse(self, value: str) -> int:
        return parse_usd(value)


class PriceType(_ParsingType[Decimal]):
    name = "usd_per_mtok"

    def parse(self, value: str) -> Decimal:
        return parse_decimal_price(value)


class ListType(_ParsingType[tuple[str, ...]]):
    name = "list"

    def parse(self, value: str) -> tuple[str, ...]:
        return parse_list(value)


class StatusType(_ParsingType[int | str]):
    name = "CODE|error"

    def parse(self, value: str) -> int | str:
        return parse_status(value)


DURATION = DurationType()
SINCE = MomentType()
UNTIL = MomentType(end_of_day=True)


def period_options[F: Callable[..., Any]](f: F) -> F:
    """``--since`` and ``--until`` of a report, as every report command spells them."""
    f = click.option(
        "--until", type=UNTIL, help="Up to this date (inclusive) or time (exclusive), UTC."
    )(f)
    return click.option("--since", type=SINCE, help="From this date/time (UTC), inclusive.")(f)


USD = UsdType()
PRICE = PriceType()
LIST = ListType()
STATUS = StatusType()
