"""Options that would write real keys into logs are refused."""

from __future__ import annotations

import pytest
from mitmproxy import exceptions
from mitmproxy.addons.proxyserver import Proxyserver
from mitmproxy.test import taddons

from addon.guard import SecretGuard
from addon.hooks import Gateway


def test_proxy_debug_is_refused():
    guard = SecretGuard()
    with taddons.context(Proxyserver(), guard) as tctx:
        with pytest.raises(exceptions.OptionsError, match="proxy_debug is not allowed"):
            tctx.configure(guard, proxy_debug=True)
        tctx.configure(guard, proxy_debug=False)


def test_the_gateway_carries_the_guard():
    assert any(isinstance(a, SecretGuard) for a in Gateway().addons)
