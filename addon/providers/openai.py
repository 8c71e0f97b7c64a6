"""OpenAI: chat completions, legacy completions, embeddings, the Responses API and the paid
media endpoints (images, transcription, speech)."""

from __future__ import annotations

from addon.providers.base import BEARER, Provider
from addon.providers.openai_style import OPENAI_STYLE

PROVIDER = Provider(
    name="openai",
    hosts=("api.openai.com",),
    default_base_url="https://api.openai.com/v1",
    auth=BEARER,
    wire=OPENAI_STYLE,
    strip_headers=("openai-organization", "openai-project"),
)
