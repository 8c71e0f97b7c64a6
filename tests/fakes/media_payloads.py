"""Answers of the fake upstream for OpenAI's image, audio and batch endpoints.

Shapes follow the OpenAI API reference: gpt-image models answer with ``usage`` (text and
image tokens) and the ``size``/``quality`` they used; other image models only list the
images; ``whisper-1`` reports ``usage: {"type": "duration"}`` (``verbose_json``: a
``duration``), ``gpt-4o-*transcribe`` reports tokens; ``text`` transcripts and speech are not
JSON. ``POST /v1/batches`` answers a batch object (a paid endpoint the gateway does not meter).
"""

from __future__ import annotations

import json
import re
from typing import Any

ROUTES = (  # (path suffix, api)
    ("/images/generations", "images"),
    ("/images/edits", "images"),
    ("/audio/transcriptions", "transcriptions"),
    ("/audio/translations", "transcriptions"),
    ("/audio/speech", "speech"),
    ("/batches", "batches"),
)
APIS = frozenset(api for _, api in ROUTES)
IMAGE_USAGE = {"text_tokens": 20, "image_output_tokens_each": 272}
SPEECH_BYTES = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" * 64
TRANSCRIPT = "The quick brown fox jumped over the lazy dog."
DURATION_S = 8.47
WHISPER_SECONDS = 9


def route(path: str) -> str | None:
    bare = path.split("?", 1)[0].rstrip("/")
    return next((api for suffix, api in ROUTES if bare.endswith(suffix)), None)


def fields(body: bytes) -> dict[str, Any]:
    """JSON fields, or the text fields of a multipart form."""
    try:
        doc = json.loads(body)
        return dict(doc) if isinstance(doc, dict) else {}
    except (ValueError, UnicodeDecodeError):
        pass
    out: dict[str, Any] = {}
    for m in re.finditer(rb'name="([^"]+)"\r\n\r\n(.*?)\r\n--', body, re.S):
        out[m[1].decode()] = m[2].decode("utf-8", "replace")
    return out


def answer(api: str, body: bytes) -> tuple[str, bytes]:
    """(content type, body) of the answer to a media request."""
    f = fields(body)
    model = str(f.get("model") or "")
    if api == "images":
        return "application/json", json.dumps(_images(model, f)).encode()
    if api == "transcriptions":
        return _transcription(model, str(f.get("response_format") or "json"))
    if api == "speech":
        return "audio/mpeg", SPEECH_BYTES
    batch = {"id": "batch_abc123", "object": "batch", "endpoint": f.get("endpoint")}
    return "application/json", json.dumps({**batch, "status": "validating"}).encode()


def _images(model: str, f: dict[str, Any]) -> dict[str, Any]:
    n = int(f.get("n") or 1)
    if not model.startswith("gpt-image"):
        return {
            "created": 1713833628,
            "data": [{"url": f"https://img.example/{i}"} for i in range(n)],
        }
    out_tokens = n * IMAGE_USAGE["image_output_tokens_each"]
    text_tokens = IMAGE_USAGE["text_tokens"]
    return {
        "created": 1713833628,
        "data": [{"b64_json": "aGVsbG8="} for _ in range(n)],
        "size": f.get("size") or "1024x1024",
        "quality": f.get("quality") or "low",
        "usage": {
            "input_tokens": text_tokens,
            "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": 0},
            "output_tokens": out_tokens,
            "total_tokens": text_tokens + out_tokens,
        },
    }


def _transcription(model: str, response_format: str) -> tuple[str, bytes]:
    if response_format == "text":
        return "text/plain; charset=utf-8", (TRANSCRIPT + "\n").encode()
    if response_format == "verbose_json":
        doc: dict[str, Any] = {"task": "transcribe", "language": "english"}
        doc |= {"duration": DURATION_S, "text": TRANSCRIPT, "segments": []}
    elif model.startswith("gpt-4o"):
        usage = {"type": "tokens", "input_tokens": 14, "output_tokens": 11, "total_tokens": 25}
        usage["input_token_details"] = {"text_tokens": 0, "audio_tokens": 14}
        doc = {"text": TRANSCRIPT, "usage": usage}
    else:
        doc = {"text": TRANSCRIPT, "usage": {"type": "duration", "seconds": WHISPER_SECONDS}}
    return "application/json", json.dumps(doc).encode()
