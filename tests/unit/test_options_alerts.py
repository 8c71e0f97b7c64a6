"""The alert webhook options: the mitmproxy option wins over the environment; bad URLs stop."""

from __future__ import annotations

import pytest
from mitmproxy.options import Options

from addon import options

HOOK = "https://hooks.example.com/services/T/B/TOKEN"


@pytest.fixture
def opts(tmp_path, monkeypatch) -> Options:
    monkeypatch.delenv(options.ALERT_WEBHOOK_ENV, raising=False)
    o = Options()
    options.declare(o)
    o.update(tollkeeper_home=str(tmp_path))
    return o


def test_no_webhook_by_default(opts):
    config = options.parse(opts)
    assert config.alert_webhook is None and config.alert_retry_s == 1.0


def test_the_environment_gives_the_webhook(opts, monkeypatch):
    monkeypatch.setenv(options.ALERT_WEBHOOK_ENV, HOOK)
    assert options.parse(opts).alert_webhook == HOOK


def test_the_option_wins_over_the_environment(opts, monkeypatch):
    monkeypatch.setenv(options.ALERT_WEBHOOK_ENV, "http://other.example.com/x")
    opts.update(tollkeeper_alert_webhook=HOOK, tollkeeper_alert_retry_ms=250)
    config = options.parse(opts)
    assert config.alert_webhook == HOOK and config.alert_retry_s == 0.25


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"tollkeeper_alert_webhook": "hooks.example.com/x"}, "tollkeeper_alert_webhook"),
        ({"tollkeeper_alert_retry_ms": 0}, "tollkeeper_alert_retry_ms"),
    ],
)
def test_bad_alert_options_are_refused(opts, changes, fragment):
    opts.update(**changes)
    with pytest.raises(ValueError, match=fragment):
        options.parse(opts)
