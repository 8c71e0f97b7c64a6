"""ProxyDefaults alone: connection_strategy forced lazy, allow_hosts managed unless the
operator chose the host options, and kept up to date when providers change."""

from __future__ import annotations

import logging

from mitmproxy.addons.proxyserver import Proxyserver
from mitmproxy.test import taddons

from addon.hooks.proxy_defaults import ProxyDefaults
from addon.hooks.shared import Shared
from addon.providers.registry import BUILTIN


def test_connection_strategy_is_set_lazy_with_a_warning(caplog):
    defaults = ProxyDefaults(Shared())
    with taddons.context(Proxyserver(), defaults) as tctx:
        caplog.set_level(logging.WARNING)
        tctx.configure(defaults, connection_strategy="eager")
        assert tctx.options.connection_strategy == "lazy"
    assert any("connection_strategy=lazy" in r.getMessage() for r in caplog.records)


def test_allow_hosts_become_the_provider_hosts():
    defaults = ProxyDefaults(Shared())
    with taddons.context(Proxyserver(), defaults) as tctx:
        tctx.configure(defaults, allow_hosts=[])
        assert list(tctx.options.allow_hosts) == BUILTIN.allow_hosts_patterns()


def test_the_operators_own_host_options_are_kept():
    defaults = ProxyDefaults(Shared())
    with taddons.context(Proxyserver(), defaults) as tctx:
        tctx.configure(defaults, allow_hosts=["example\\.org"])
        assert list(tctx.options.allow_hosts) == ["example\\.org"]
        tctx.configure(defaults, allow_hosts=[], ignore_hosts=["internal"])
        assert list(tctx.options.allow_hosts) == []
        defaults._registry_changed()  # the operator manages them: left alone
        assert list(tctx.options.allow_hosts) == []


def test_a_registry_change_updates_managed_allow_hosts():
    defaults = ProxyDefaults(Shared())
    with taddons.context(Proxyserver(), defaults) as tctx:
        tctx.configure(defaults, allow_hosts=[])
        tctx.options.update(allow_hosts=["stale"])
        defaults._managed_hosts = ["stale"]  # what it set before providers changed
        defaults._registry_changed()
        assert list(tctx.options.allow_hosts) == BUILTIN.allow_hosts_patterns()
