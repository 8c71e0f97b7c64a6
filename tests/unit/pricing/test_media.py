"""Media prices and the exact cost of image, transcription and speech requests."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from addon.metering.media import MediaUsage, TokenSplit
from addon.pricing.charge import media_cost
from addon.pricing.media import (
    MediaPrice,
    media_cost_picousd,
    media_price_from_json,
    media_price_to_json,
)
from addon.pricing.table import PriceBook

BOOK = PriceBook.bundled()
PUSD = 10**12


def test_gpt_image_1_is_priced_by_its_reported_tokens() -> None:
    # gpt-image-1 list price: text input $5, image input $10, image output $40 per 1M tokens
    usage = MediaUsage(
        kind="image",
        images=1,
        size="1024x1024",
        quality="high",
        tokens=TokenSplit(text_input=60, image_input=40, image_output=4160),
    )
    cost = media_cost(BOOK, "openai", "gpt-image-1", usage)
    assert cost == 60 * 5_000_000 + 40 * 10_000_000 + 4160 * 40_000_000


def test_images_without_usage_are_priced_per_image_by_quality_and_size() -> None:
    usage = MediaUsage(kind="image", images=2, size="1024x1536", quality="medium")
    # medium/1024-x-1536/gpt-image-1: $0.063 per image
    assert media_cost(BOOK, "openai", "gpt-image-1", usage) == 2 * 63 * 10**9


def test_azure_images_are_priced_per_pixel_where_that_is_all_the_data_has() -> None:
    usage = MediaUsage(kind="image", images=1, size="1024x1024", quality="high")
    # azure/high/1024-x-1024/gpt-image-1: 1.59263611e-07 USD per pixel
    exact = 1024 * 1024 * D("1.59263611e-07") * PUSD  # 167000000167.936 picodollars
    assert media_cost(BOOK, "azure", "gpt-image-1", usage) == int(exact + D("0.5"))


def test_images_of_an_unknown_size_or_model_are_unpriced() -> None:
    odd = MediaUsage(kind="image", images=1, size="333x333", quality="high")
    assert media_cost(BOOK, "openai", "gpt-image-1", odd) is None
    known = MediaUsage(kind="image", images=1, size="1024x1024", quality="high")
    assert media_cost(BOOK, "openai", "my-image-model", known) is None
    assert media_cost(BOOK, "openai", None, known) is None


def test_whisper_is_priced_per_second_of_reported_duration() -> None:
    usage = MediaUsage(kind="transcription", seconds=D("8.47"))
    # whisper-1: $0.0001 per second ($0.006 per minute)
    assert media_cost(BOOK, "openai", "whisper-1", usage) == 847 * 10**6


def test_token_priced_transcription_uses_its_audio_and_text_rates() -> None:
    usage = MediaUsage(
        kind="transcription", tokens=TokenSplit(text_input=4, audio_input=10, text_output=45)
    )
    # gpt-4o-transcribe: audio input $2.5, text input $2.5, text output $10 per 1M tokens
    cost = media_cost(BOOK, "openai", "gpt-4o-transcribe", usage)
    assert cost == 14 * 2_500_000 + 45 * 10_000_000


def test_transcription_without_duration_or_tokens_is_unpriced() -> None:
    assert media_cost(BOOK, "openai", "whisper-1", MediaUsage(kind="transcription")) is None


def test_speech_is_priced_per_character() -> None:
    usage = MediaUsage(kind="speech", characters=1000)
    assert media_cost(BOOK, "openai", "tts-1", usage) == 15 * 10**9  # $15 per 1M characters
    assert media_cost(BOOK, "openai", "tts-1-hd", usage) == 30 * 10**9


def test_token_priced_speech_without_reported_tokens_is_unpriced() -> None:
    usage = MediaUsage(kind="speech", characters=1000)
    assert media_cost(BOOK, "openai", "gpt-4o-mini-tts", usage) is None


def test_groq_whisper_is_priced_from_the_groq_entry() -> None:
    usage = MediaUsage(kind="transcription", seconds=D("60"))
    # groq/whisper-large-v3: 3.083e-05 USD per second
    assert media_cost(BOOK, "groq", "whisper-large-v3", usage) == 60 * 30_830_000


def test_a_token_count_without_a_rate_is_not_priced_by_guess() -> None:
    price = MediaPrice(per_mchar=D("15"))
    tokens = MediaUsage(kind="speech", characters=10, tokens=TokenSplit(audio_output=5))
    assert media_cost_picousd(price, tokens) == 150_000_000  # by characters: 10 x $15/1M
    only_tokens = MediaPrice(text_input=D("1"))
    assert media_cost_picousd(only_tokens, tokens) is None


def test_cost_is_rounded_once_at_the_end() -> None:
    price = MediaPrice(input_per_second=D("0.000283333333333"))
    usage = MediaUsage(kind="transcription", seconds=D("3"))
    assert media_cost_picousd(price, usage) == 850_000_000  # 849999999.999 rounds up


def test_media_price_json_round_trip_and_validation() -> None:
    data = {"per_image": "0.042", "text_input": "5", "provider": "openai"}
    price = media_price_from_json(data)
    assert media_price_to_json(price) == {"text_input": "5", "per_image": "0.042"}
    with pytest.raises(ValueError):
        media_price_from_json({"per_video": "1"})
    with pytest.raises(ValueError):
        media_price_from_json({"per_image": "-1"})
    with pytest.raises(ValueError):
        media_price_from_json({})
    with pytest.raises(TypeError):
        MediaPrice(per_image=0.1)  # type: ignore[arg-type]
