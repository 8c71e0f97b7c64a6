"""Usage of images, transcription and speech from their requests and answers."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from addon.metering.media import (
    MEDIA_APIS,
    MediaUsage,
    TokenSplit,
    media_usage_from_json,
    parse_media_response,
    request_facts,
)
from addon.metering.usage import MeterResult, Usage
from addon.providers.wire import parse_response

# gpt-image-1 answer shape (OpenAI images API reference)
IMAGE_ANSWER = {
    "created": 1713833628,
    "data": [{"b64_json": "aGVsbG8="}],
    "background": "opaque",
    "output_format": "png",
    "quality": "high",
    "size": "1024x1024",
    "usage": {
        "total_tokens": 4260,
        "input_tokens": 100,
        "output_tokens": 4160,
        "input_tokens_details": {"text_tokens": 60, "image_tokens": 40},
    },
}


def form(fields: dict[str, str], file_bytes: bytes = b"\x00\xffRIFF....WAVEfmt ") -> bytes:
    boundary = b"----tkboundary42"
    parts = []
    for name, value in fields.items():
        parts.append(
            b"--" + boundary + b'\r\nContent-Disposition: form-data; name="' + name.encode()
            + b'"\r\n\r\n' + value.encode() + b"\r\n"
        )  # fmt: skip
    parts.append(
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="a.wav"'
        b"\r\nContent-Type: audio/wav\r\n\r\n" + file_bytes + b"\r\n"
    )
    return b"".join(parts) + b"--" + boundary + b"--\r\n"


def test_gpt_image_answer_gives_tokens_by_modality_and_its_size_and_quality() -> None:
    r = parse_media_response("openai.images", json.dumps(IMAGE_ANSWER).encode())
    assert r.usage == Usage(input_tokens=100, output_tokens=4160)
    assert r.error_kind is None
    media = r.extras["media"]
    assert media["images"] == 1 and (media["size"], media["quality"]) == ("1024x1024", "high")
    assert media["tokens"] == {"text_input": 60, "image_input": 40, "image_output": 4160}


def test_image_answer_without_usage_reports_the_images_only() -> None:
    body = json.dumps({"created": 1, "data": [{"url": "https://x/1"}, {"url": "https://x/2"}]})
    r = parse_media_response("openai.images", body.encode())
    assert r.usage is None
    assert r.extras["media"] == {"images": 2}


@pytest.mark.parametrize(
    ("answer", "seconds", "tokens"),
    [
        ({"text": "hi", "usage": {"type": "duration", "seconds": 9}}, "9", None),
        ({"text": "hi", "duration": 8.47, "language": "english"}, "8.47", None),
        (
            {
                "text": "hi",
                "usage": {
                    "type": "tokens",
                    "input_tokens": 14,
                    "input_token_details": {"text_tokens": 4, "audio_tokens": 10},
                    "output_tokens": 45,
                    "total_tokens": 59,
                },
            },
            None,
            {"text_input": 4, "audio_input": 10, "text_output": 45},
        ),
    ],
)
def test_transcription_answers_give_seconds_or_tokens(answer, seconds, tokens) -> None:
    r = parse_media_response("openai.transcriptions", json.dumps(answer).encode())
    assert r.extras["media"].get("seconds") == seconds
    assert r.extras["media"].get("tokens") == tokens
    assert (r.usage is None) == (tokens is None)


@pytest.mark.parametrize("api", ["openai.speech", "openai.transcriptions"])
@pytest.mark.parametrize(
    "body", [b"ID3\x04\x00\xff\xfb\x90", b"1\n00:00:00,000 --> 00:00:01,000\nhi"]
)
def test_audio_bytes_and_plain_text_transcripts_are_not_errors(api: str, body: bytes) -> None:
    r = parse_response(api, body)
    assert r == MeterResult()


def test_provider_error_body_gives_its_code() -> None:
    body = b'{"error": {"message": "bad", "type": "invalid_request_error", "code": "bad_size"}}'
    assert parse_response("openai.images", body).error_kind == "bad_size"


def test_usage_of_the_wrong_shape_is_bad_json() -> None:
    body = json.dumps({"data": [], "usage": {"input_tokens": "many"}}).encode()
    assert parse_response("openai.images", body).error_kind == "bad_json"


def test_json_request_facts_of_images_and_speech() -> None:
    images = json.dumps({"model": "gpt-image-1", "prompt": "a cat", "n": 2, "size": "1024x1536"})
    assert request_facts("openai.images", images.encode()) == {
        "model": "gpt-image-1",
        "n": 2,
        "size": "1024x1536",
    }
    speech = json.dumps({"model": "tts-1", "input": "Héllo wörld", "voice": "alloy"})
    assert request_facts("openai.speech", speech.encode()) == {"model": "tts-1", "characters": 11}


def test_multipart_request_facts_skip_the_file_part() -> None:
    body = form({"model": "whisper-1", "response_format": "verbose_json"}, b"--x\r\n" * 1000)
    assert request_facts("openai.transcriptions", body) == {"model": "whisper-1"}
    edit = form({"prompt": "make it blue", "model": "gpt-image-1", "n": "3", "quality": "low"})
    assert request_facts("openai.image_edits", edit) == {
        "model": "gpt-image-1",
        "n": 3,
        "quality": "low",
    }


def test_media_usage_round_trips_through_its_json_form() -> None:
    usage = MediaUsage(
        kind="image",
        images=2,
        size="1024x1024",
        quality="high",
        seconds=Decimal("1.5"),
        characters=3,
        tokens=TokenSplit(text_input=5, image_output=7),
    )
    assert media_usage_from_json(json.loads(json.dumps(usage.as_json()))) == usage
    assert media_usage_from_json({"kind": "video"}) is None
    assert media_usage_from_json({"kind": "image", "images": -1}) is None


@given(api=st.sampled_from(sorted(MEDIA_APIS)), raw=st.binary(max_size=300))
def test_never_raises_on_arbitrary_bytes(api: str, raw: bytes) -> None:
    assert isinstance(parse_media_response(api, raw), MeterResult)
    assert isinstance(request_facts(api, raw), dict)
    assert isinstance(request_facts(api, b"--" + raw), dict)
