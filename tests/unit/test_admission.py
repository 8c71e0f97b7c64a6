"""Which requests a limited key may send: only what the gateway meters, unless allowed."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from addon.admission import DEFAULT_OUTPUT_TOKENS, check_metered, reservation
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


def _chat_body(**fields: object) -> bytes:
    return json.dumps(
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], **fields}
    ).encode()


def test_a_request_without_an_output_limit_reserves_the_default_output() -> None:
    """A fresh key has no average cost yet: the reservation must cover the answer itself."""
    cost, tokens = reservation(BOOK, "openai", "openai.chat", "gpt-4o-mini", _chat_body())
    assert cost == tokens * 150_000 + DEFAULT_OUTPUT_TOKENS * 600_000
    assert 0 < tokens < 20  # a TPM limit counts the prompt only: no output limit was set
    smaller, _ = reservation(BOOK, "openai", "openai.chat", "gpt-4o-mini", _chat_body(), 10)
    assert smaller == tokens * 150_000 + 10 * 600_000


@pytest.mark.parametrize(
    ("api", "model", "body", "output"),
    [
        ("openai.chat", "gpt-4o-mini", _chat_body(max_completion_tokens=50, n=3), 150),
        ("openai.chat", "gpt-4o-mini", _chat_body(max_tokens=50, n=10**6), 50 * 128),
        ("openai.chat", "gpt-4o-mini", _chat_body(max_tokens=True), DEFAULT_OUTPUT_TOKENS),
        ("openai.chat", "gpt-4o-mini", _chat_body(max_tokens=10**30), 10**7),
        ("openai.responses", "gpt-4o-mini",
         json.dumps({"input": "hi", "max_output_tokens": 70}).encode(), 70),
        ("anthropic.messages", "claude-sonnet-4-5",
         json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 300}).encode(),
         300),
        ("gemini.generate", "gemini-2.5-flash",
         json.dumps({"contents": [{"parts": [{"text": "hi"}]}],
                     "generationConfig": {"maxOutputTokens": 80, "candidateCount": 2}}).encode(),
         160),
    ],
)  # fmt: skip
def test_the_output_limit_is_read_wherever_the_api_puts_it(api, model, body, output) -> None:
    provider = api.split(".")[0]
    cost, tokens = reservation(BOOK, provider, api, model, body)
    prompt_cost, prompt = reservation(BOOK, provider, api, model, _strip_limits(body), 0)
    explicit = output != DEFAULT_OUTPUT_TOKENS
    assert prompt > 0 and tokens == prompt + (output if explicit else 0)
    same_default, _ = reservation(BOOK, provider, api, model, body, output)
    assert prompt_cost > 0 and cost > prompt_cost  # the output is priced on top of the prompt
    assert cost == same_default  # priced as `output` tokens: the limit, or the default


def _strip_limits(body: bytes) -> bytes:
    doc = json.loads(body)
    for name in ("max_tokens", "max_completion_tokens", "max_output_tokens", "generationConfig"):
        doc.pop(name, None)
    return json.dumps(doc).encode()


@pytest.mark.parametrize("body", [b"{", b"[1, 2]", b"null", b"[" * 100_000])
def test_a_body_that_is_not_an_object_reserves_the_default_output(body: bytes) -> None:
    cost, tokens = reservation(BOOK, "openai", "openai.chat", "gpt-4o-mini", body)
    assert (cost, tokens) == (DEFAULT_OUTPUT_TOKENS * 600_000, 0)
