"""Which requests a limited key may send: only what the gateway meters, unless allowed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from addon.admission import check_metered
from addon.errors import NotAllowed
from addon.keycache import KeyInfo

BASE = KeyInfo(
    id="abc123xyz0",
    project="proj",
    secret_hash="x",
    expires_at=None,
    revoked=False,
    allowed_providers=(),
    allowed_models=(),
    budget_picousd=None,
    budget_period="total",
    rpm=None,
    tpm=None,
    max_parallel=None,
)
BUDGET = replace(BASE, budget_picousd=100_000_000)
TPM = replace(BASE, tpm=1000)
UNMETERED = [
    ("openai.other", "POST"),  # fine-tuning jobs, batches, files, vector stores
    ("openai.realtime", "GET"),  # the Realtime websocket
    ("anthropic.other", "POST"),  # message batches
    ("gemini.other", "POST"),  # embedContent, predict, batchGenerateContent
]
METERED = [
    ("openai.chat", "POST"),
    ("openai.images", "POST"),
    ("openai.transcriptions", "POST"),
    ("openai.speech", "POST"),
    ("anthropic.count_tokens", "POST"),  # free
    ("openai.moderations", "POST"),  # free
    ("openai.other", "GET"),  # reads
    ("openai.other", "DELETE"),
]


@pytest.mark.parametrize(("api", "method"), UNMETERED)
@pytest.mark.parametrize("key", [BUDGET, TPM], ids=["budget", "tpm"])
def test_a_limited_key_is_refused_what_the_gateway_does_not_meter(key, api, method) -> None:
    with pytest.raises(NotAllowed) as caught:
        check_metered(key, api, method)
    assert caught.value.status == 403 and caught.value.code == "not_allowed"


@pytest.mark.parametrize(("api", "method"), METERED)
@pytest.mark.parametrize("key", [BUDGET, TPM], ids=["budget", "tpm"])
def test_a_limited_key_reaches_every_metered_or_free_endpoint(key, api, method) -> None:
    check_metered(key, api, method)


@pytest.mark.parametrize(("api", "method"), UNMETERED)
def test_allow_unmetered_and_unlimited_keys_reach_anything(api, method) -> None:
    check_metered(replace(BUDGET, allow_unmetered=True), api, method)
    check_metered(BASE, api, method)
    check_metered(replace(BASE, rpm=10, max_parallel=2), api, method)  # no money or tokens
