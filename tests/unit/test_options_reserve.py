"""The reservation option reaches the config and refuses nonsense."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from addon import options


def _options(tmp_path: Path, **overrides: object) -> SimpleNamespace:
    values: dict[str, object] = {
        "tollkeeper_home": str(tmp_path),
        "tollkeeper_db": "",
        "tollkeeper_refresh_ms": 500,
        "tollkeeper_upstream_timeout": 600,
        "tollkeeper_probe_upstream": True,
        "tollkeeper_key_retry": 30,
        "tollkeeper_max_decoded_mb": 64,
        "tollkeeper_stream_max_s": 3600,
        "tollkeeper_stream_idle_s": 300,
        "tollkeeper_reserve_output_tokens": 4096,
    }
    return SimpleNamespace(**{**values, **overrides})


def test_the_output_reservation_reaches_the_config(tmp_path: Path) -> None:
    config = options.parse(_options(tmp_path, tollkeeper_reserve_output_tokens=300))
    assert config.reserve_output_tokens == 300
    assert options.parse(_options(tmp_path)).reserve_output_tokens == 4096


def test_a_negative_output_reservation_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tollkeeper_reserve_output_tokens"):
        options.parse(_options(tmp_path, tollkeeper_reserve_output_tokens=-1))
