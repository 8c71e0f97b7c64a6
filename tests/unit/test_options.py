"""Options reach the config and refuse nonsense: the output reservation, the flush interval
(the alert webhook options: test_options_alerts.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mitmproxy.options import Options

from addon import options


def _options(tmp_path: Path, **overrides: object) -> Options:
    """mitmproxy's own options with tollkeeper's declared: every option has its default."""
    o = Options()
    options.declare(o)
    o.update(tollkeeper_home=str(tmp_path), **overrides)
    return o


def test_the_output_reservation_reaches_the_config(tmp_path: Path) -> None:
    config = options.parse(_options(tmp_path, tollkeeper_reserve_output_tokens=300))
    assert config.reserve_output_tokens == 300
    assert options.parse(_options(tmp_path)).reserve_output_tokens == 4096


def test_a_negative_output_reservation_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tollkeeper_reserve_output_tokens"):
        options.parse(_options(tmp_path, tollkeeper_reserve_output_tokens=-1))


def test_the_flush_interval_reaches_the_config(tmp_path: Path) -> None:
    assert options.parse(_options(tmp_path)).flush_s == 0.25
    assert options.parse(_options(tmp_path, tollkeeper_flush_ms=20)).flush_s == 0.02


@pytest.mark.parametrize("ms", [0, 9, 60_001])
def test_a_flush_interval_out_of_range_is_refused(tmp_path: Path, ms: int) -> None:
    with pytest.raises(ValueError, match="tollkeeper_flush_ms must be between 10 and 60000"):
        options.parse(_options(tmp_path, tollkeeper_flush_ms=ms))
