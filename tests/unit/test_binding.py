"""An Azure real key is bound to the resource of its base URL."""

from __future__ import annotations

import pytest

from addon.binding import bound_keys, destination_problem, resource_of
from addon.errors import NotAllowed
from addon.keycache import RealKeyInfo
from addon.providers.registry import PROVIDERS

AZURE, OPENAI = PROVIDERS["azure"], PROVIDERS["openai"]


def key(label: str, base_url: str | None) -> RealKeyInfo:
    return RealKeyInfo(
        id=hash(label),
        provider="azure",
        label=label,
        base_url=base_url,
        ciphertext=None,
        env_ref="X",
        status="active",
        cooldown_until=None,
        auth_failures=0,
    )


A = key("a", "https://resa.openai.azure.com")
B = key("b", "https://resb.openai.azure.com")
GATEWAY = key("gw", "http://127.0.0.1:9")
BARE = key("bare", None)


def test_a_resource_host_base_url_binds_the_key():
    assert resource_of(AZURE, "https://ResA.openai.azure.com/") == "resa.openai.azure.com"
    assert resource_of(AZURE, "http://127.0.0.1:9") is None


def test_each_request_gets_the_key_of_its_resource():
    assert bound_keys(AZURE, (A, B), "resb.openai.azure.com") == (B,)
    assert bound_keys(AZURE, (A, B, GATEWAY), "resa.openai.azure.com") == (A,)
    assert bound_keys(AZURE, (A, GATEWAY), "other.openai.azure.com") == (GATEWAY,)


def test_a_request_for_another_resource_is_refused():
    with pytest.raises(NotAllowed, match=r"other\.openai\.azure\.com"):
        bound_keys(AZURE, (A, B), "other.openai.azure.com")
    with pytest.raises(NotAllowed):
        bound_keys(AZURE, (BARE,), "resa.openai.azure.com")  # no base URL: never used


def test_providers_with_a_fixed_upstream_are_not_filtered():
    assert bound_keys(OPENAI, (BARE,), "api.openai.com") == (BARE,)
    assert bound_keys(AZURE, (), "x.openai.azure.com") == ()


def test_azure_keys_need_an_https_resource_or_another_base_url():
    assert "need --base-url" in (destination_problem(AZURE, None) or "")
    assert "https" in (destination_problem(AZURE, "http://resa.openai.azure.com") or "")
    assert destination_problem(AZURE, "https://resa.openai.azure.com") is None
    assert destination_problem(AZURE, "http://127.0.0.1:9") is None
    assert destination_problem(OPENAI, None) is None
