"""Which requests a limited key may send: only what the gateway meters, unless allowed."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from addon.admission import check_metered, reservation
from addon.errors import NotAllowed
from addon.keycache import KeyInfo
from addon.pricing.table import PriceBook

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


# --- what a request reserves -------------------------------------------------------------

BOOK = PriceBook.bundled()


def test_an_image_request_reserves_its_images_at_the_requested_price() -> None:
    body = json.dumps({"model": "gpt-image-1", "prompt": "x", "n": 3, "quality": "low"})
    # low/1024-x-1024/gpt-image-1: $0.011 per image
    assert reservation(BOOK, "openai", "openai.images", "gpt-image-1", body.encode()) == (
        3 * 11 * 10**9,
        0,
    )


def test_an_image_request_without_quality_or_size_reserves_the_high_price() -> None:
    body = json.dumps({"model": "gpt-image-1", "prompt": "x", "size": "auto"}).encode()
    cost, _ = reservation(BOOK, "openai", "openai.images", None, body)
    assert cost == 167 * 10**9  # high/1024-x-1024/gpt-image-1: $0.167


def test_speech_reserves_its_characters_and_chat_its_prompt_and_max_tokens() -> None:
    speech = json.dumps({"model": "tts-1", "input": "x" * 1000, "voice": "alloy"}).encode()
    assert reservation(BOOK, "openai", "openai.speech", "tts-1", speech) == (15 * 10**9, 0)
    chat = json.dumps(
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 100}
    ).encode()
    cost, tokens = reservation(BOOK, "openai", "openai.chat", "gpt-4o-mini", chat)
    prompt = tokens - 100
    assert prompt > 0 and cost == prompt * 150_000 + 100 * 600_000


def test_a_transcription_or_an_unknown_model_reserves_nothing() -> None:
    assert reservation(BOOK, "openai", "openai.transcriptions", "whisper-1", b"--x\r\n") == (0, 0)
    body = json.dumps({"model": "my-image-model", "prompt": "x"}).encode()
    assert reservation(BOOK, "openai", "openai.images", "my-image-model", body) == (0, 0)
