from datetime import UTC, datetime, timedelta, timezone

import click
import pytest
from click.testing import CliRunner

from cli.output import iso, print_csv, print_table, short_time, usd


@pytest.mark.parametrize(
    ("picousd", "text"),
    [
        (0, "0.00"),
        (5 * 10**12, "5.00"),
        (1_500_000_000_000, "1.50"),
        (123_000_000, "0.000123"),
        (1, "0.000000000001"),
        (5_000_001_234_567, "5.000001234567"),
        (-250_000_000_000, "-0.25"),
        (10**30, "1" + "0" * 18 + ".00"),
    ],
)
def test_usd_is_exact_with_at_least_two_decimals(picousd, text):
    assert usd(picousd) == text


def test_times_are_shown_in_utc():
    moment = datetime(2025, 1, 31, 23, 30, 5, tzinfo=timezone(timedelta(hours=-2)))
    assert iso(moment) == "2025-02-01T01:30:05Z"
    assert short_time(moment) == "2025-02-01 01:30"
    assert short_time(moment, seconds=True) == "2025-02-01 01:30:05"
    assert iso(None) is None and short_time(None) == "-"
    assert iso(datetime(2025, 1, 1, tzinfo=UTC)) == "2025-01-01T00:00:00Z"


def _capture(fn) -> str:
    @click.command()
    def command() -> None:
        fn()

    return CliRunner().invoke(command).stdout


def test_table_columns_are_aligned_without_trailing_blanks():
    out = _capture(lambda: print_table(["A", "LONGER"], [["xxxx", None], ["y", "z"]]))
    assert out.splitlines() == ["A     LONGER", "xxxx", "y     z"]


def test_csv_quotes_where_needed():
    out = _capture(lambda: print_csv(["a", "b"], [["x,y", None], [1, "q"]]))
    assert out == 'a,b\n"x,y",\n1,q\n'
