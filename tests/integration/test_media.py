"""Images, transcription and speech through a real mitmdump with the openai SDK: metered,
priced from the bundled data, and a paid endpoint the gateway does not meter is unpriced."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import openai
import pytest
from fakes import media_payloads
from integration.conftest import Stack
from integration.harness import wait_for

WAV = b"RIFF$\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00" + b"\x00" * 64


def _by_model(stack: Stack, project: str, requests: int) -> dict[str, dict]:
    def rows() -> list[dict] | None:
        got = stack.cli.json("usage", "--by", "model", "--project", project, "--format", "json")
        return got if sum(r["requests"] for r in got) == requests else None

    found = wait_for(rows)
    assert found, f"no {requests} usage records for {project}"
    return {r["model"]: r for r in found}


@pytest.mark.parametrize("way", ["forward", "reverse"])
def test_images_audio_and_speech_are_metered_and_priced(
    stack: Stack, monkeypatch, way: str
) -> None:
    project = f"media-{way}"
    key = stack.cli.new_key(project)["key"]
    client = getattr(stack, f"openai_{way}")(key, monkeypatch)

    image = client.images.generate(model="gpt-image-1", prompt="a lighthouse", n=2)
    whisper = client.audio.transcriptions.create(
        model="whisper-1", file=("a.wav", io.BytesIO(WAV)), response_format="verbose_json"
    )
    tokens = client.audio.transcriptions.create(
        model="gpt-4o-transcribe", file=("a.wav", io.BytesIO(WAV))
    )
    speech = client.audio.speech.create(model="tts-1", voice="alloy", input="Hello there!")

    assert len(image.data) == 2 and whisper.duration == media_payloads.DURATION_S
    assert tokens.text == media_payloads.TRANSCRIPT
    assert speech.read() == media_payloads.SPEECH_BYTES  # the audio reaches the client as sent
    rows = _by_model(stack, project, 4)
    assert rows["gpt-image-1"]["input_tokens"] == 20
    assert rows["gpt-image-1"]["output_tokens"] == 2 * 272
    # gpt-image-1: $5 per 1M text input tokens, $40 per 1M image output tokens
    expected_image = (20 * Decimal(5) + 544 * Decimal(40)) / 10**6
    assert Decimal(rows["gpt-image-1"]["cost_usd"]) == expected_image
    assert Decimal(rows["whisper-1"]["cost_usd"]) == Decimal("8.47") * Decimal("0.0001")
    # gpt-4o-transcribe: 14 audio tokens at $2.5, 11 text output tokens at $10 per 1M
    assert Decimal(rows["gpt-4o-transcribe"]["cost_usd"]) == (14 * Decimal("2.5") + 110) / 10**6
    assert Decimal(rows["tts-1"]["cost_usd"]) == 12 * Decimal(15) / 10**6  # per character
    assert all(r["unpriced_requests"] == 0 and r["error_requests"] == 0 for r in rows.values())


def test_a_paid_endpoint_the_gateway_does_not_meter_is_unpriced(stack: Stack, monkeypatch) -> None:
    project = "media-unmetered"
    key = stack.cli.new_key(project)["key"]
    client = stack.openai_reverse(key, monkeypatch)
    client.batches.create(
        completion_window="24h", endpoint="/v1/chat/completions", input_file_id="file-abc"
    )
    client.models.list()  # a read: free
    client.images.generate(model="my-image-model", prompt="x")  # an unknown model

    rows = wait_for(
        lambda: [
            r
            for r in stack.cli.json("usage", "--project", project, "--by", "key", "--json")
            if r["requests"] == 3
        ]
    )
    assert rows and rows[0]["unpriced_requests"] == 2
    assert rows[0]["cost_usd"] == "0.00"  # the read is priced at exactly $0
    log = stack.cli.json("usage", "--by", "model", "--project", project, "--format", "json")
    by_model = {r["model"]: r for r in log}
    assert by_model["my-image-model"]["cost_usd"] is None  # never "0.00"
    table = stack.cli.run("usage", "--by", "model", "--project", project).stdout
    assert "unpriced" in next(line for line in table.splitlines() if "my-image-model" in line)


def _batch(client) -> object:
    return client.batches.create(
        completion_window="24h", endpoint="/v1/chat/completions", input_file_id="file-abc"
    )


def test_a_key_with_a_budget_reaches_only_metered_endpoints_unless_allowed(
    stack: Stack, monkeypatch
) -> None:
    project = "media-budget"
    key = stack.cli.new_key(project, "--budget", "5")
    client = stack.openai_reverse(key["key"], monkeypatch)
    with pytest.raises(openai.PermissionDeniedError) as refused:
        _batch(client)
    assert refused.value.response.headers["x-tollkeeper-error"] == "not_allowed"
    assert not [r for r in stack.upstream.requests if r.path.endswith("/batches")]
    client.images.generate(model="gpt-image-1", prompt="x")  # metered: allowed

    stack.cli.run("keys", "update", key["id"], "--allow-unmetered")

    refusals = [1]  # the first batch above; each poll before the change shows adds one

    def allowed() -> bool:
        try:
            _batch(client)
        except openai.PermissionDeniedError:
            refusals.append(1)
            return False  # the gateway's key cache has not seen the change yet
        return True

    assert wait_for(allowed)
    rows = wait_for(
        lambda: [
            r
            for r in stack.cli.json("usage", "--project", project, "--by", "model", "--json")
            if r["model"] is None and r["unpriced_requests"] == 1
        ]
    )
    # the refused batches (403, $0) and the allowed one, recorded as unpriced, never $0
    refused_n = len(refusals)
    assert rows and (rows[0]["requests"], rows[0]["error_requests"]) == (1 + refused_n, refused_n)


def test_an_image_burst_on_a_fresh_key_overshoots_its_budget_by_at_most_one_image(
    stack: Stack, monkeypatch
) -> None:
    budget = Decimal("0.05")
    key = stack.cli.new_key("media-burst", "--budget", str(budget))
    client = stack.openai_reverse(key["key"], monkeypatch)
    # each answer waits, so all 12 are admitted before any is settled: only the reservation
    # (low/1024-x-1024/gpt-image-1, $0.011 per image) stands between the burst and the budget
    slow = {"x-fake-wait": "0.5"}

    def one(_: int) -> str:
        try:
            client.images.generate(
                model="gpt-image-1", prompt="x", quality="low", extra_headers=slow
            )
        except openai.RateLimitError as e:
            return e.response.headers.get("x-tollkeeper-error", "?")
        return "ok"

    with ThreadPoolExecutor(12) as pool:
        outcomes = list(pool.map(one, range(12)))
    assert "budget_exceeded" in outcomes and "ok" in outcomes
    rows = wait_for(
        lambda: [
            r for r in stack.cli.usage("project") if r["project"] == "media-burst"
            and r["requests"] == 12
        ]
    )  # fmt: skip
    image = (20 * Decimal(5) + 272 * Decimal(40)) / 10**6  # $0.01098: tokens, as reported
    assert rows and Decimal(rows[0]["cost_usd"]) <= budget + image
    assert Decimal(rows[0]["cost_usd"]) == outcomes.count("ok") * image
