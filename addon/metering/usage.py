"""The normalised usage of one request, and what a meter reports.

Convention (the same as the ``usage_records`` table, see ``addon/store/models.py``):
``input_tokens`` includes cache reads and writes; ``output_tokens`` includes reasoning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    cached_input_tokens: int = 0  # cache reads, subset of input_tokens
    cache_write_tokens: int = 0  # cache writes (all TTLs), subset of input_tokens
    cache_write_1h_tokens: int = 0  # the part of cache_write_tokens with a 1-hour TTL
    output_tokens: int = 0
    reasoning_tokens: int = 0  # subset of output_tokens


@dataclass
class MeterResult:
    """What a meter learnt from a response. Plain data; safe to hand to another thread."""

    usage: Usage | None = None
    model: str | None = None  # as the provider reported it
    provider_request_id: str | None = None
    error_kind: str | None = None  # e.g. "stream_error:overloaded_error", "bad_json"
    estimated: bool = False
    # the provider reported usage with or after a stream error (OpenRouter), so the usage
    # covers the whole exchange and needs no estimate, although the stream ended in an error
    usage_final: bool = False
    streamed: bool = False
    finished: bool = False  # a stream's own end-of-stream event was seen (e.g. [DONE])
    output_text: str = ""  # text seen so far in a stream, for estimates when usage is missing
    extras: dict[str, Any] = field(default_factory=dict)  # provider-specific, JSON-safe
