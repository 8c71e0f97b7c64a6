"""A wire format: the API dialect one or more providers speak.

A format owns a family of api names (``<prefix>.chat``, ``<prefix>.other`` …) and says, for
them, how an endpoint is classified, which meter reads a buffered answer and a stream (and how
that stream is framed), how a request's prompt text is found for estimates, which apis are
token, media or free ones, which need ``stream_options.include_usage`` to report usage, and how
the gateway's own errors look to the format's SDKs. Providers reuse these objects
(``openai_style.py``, ``anthropic_style.py``, Gemini's own in ``gemini.py``), so a provider that
speaks a known format is a few lines of data.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from addon.errors import CATEGORIES, GatewayError
from addon.metering.estimate import count_tokens
from addon.metering.framing import Splitter, sse_framing
from addon.metering.stream_events import EventHandler
from addon.metering.stream_state import StreamState
from addon.metering.usage import MeterResult

Rendered = tuple[int, bytes, dict[str, str]]  # status, body, headers
ErrorBody = Callable[[GatewayError, str, dict[str, str]], dict[str, object]]


@dataclass(frozen=True)
class WireFormat:
    prefix: str  # every api name of the format starts with "<prefix>."
    classify: Callable[[str, str], str]  # (method, path below the base path) -> api name
    parse_json: Callable[[str, bytes], MeterResult]  # a buffered answer of an api
    stream_events: Callable[[str, StreamState], EventHandler]  # meters a stream's events
    prompt_text: Callable[[str, object], str]  # the countable text of a request body
    # the error type of each neutral category (addon.errors.CATEGORIES), and the body
    # (error_body(err, type, headers); it may add headers)
    error_types: Mapping[str, str]
    error_body: ErrorBody
    token_apis: frozenset[str]  # metered from the answer's usage, estimated when it is missing
    free_apis: frozenset[str] = frozenset()  # known to cost nothing
    media_apis: frozenset[str] = frozenset()  # paid, not token APIs (addon.metering.media)
    include_usage_apis: frozenset[str] = frozenset()  # streams report usage only when asked
    streamed_apis: frozenset[str] = frozenset()  # always streamed, whatever the content-type
    # how a stream's bytes are cut into events, by the response's content-type
    framing: Callable[[str | None], Callable[[], Splitter]] = sse_framing
    # input tokens of a request body for a model; default: its prompt text, counted
    prompt_tokens: Callable[[str, object, str | None], int] | None = None
    request_id_header: str = "x-request-id"  # where the provider's answers carry their id

    def __post_init__(self) -> None:
        missing = CATEGORIES - set(self.error_types)
        if missing:
            raise ValueError(f"{self.prefix}: no error type for {', '.join(sorted(missing))}")

    @property
    def billable_apis(self) -> frozenset[str]:
        """Every api the gateway meters and prices (the request body is kept for these)."""
        return self.token_apis | self.media_apis

    def owns(self, api: str) -> bool:
        return api.startswith(self.prefix + ".")

    def estimate_prompt_tokens(self, api: str, body: object, model: str | None) -> int:
        if self.prompt_tokens is not None:
            return self.prompt_tokens(api, body, model)
        return count_tokens(self.prompt_text(api, body), model)

    def render_error(self, err: GatewayError) -> Rendered:
        """The response a client of this format receives for ``err``."""
        headers = {"content-type": "application/json", "x-tollkeeper-error": err.code}
        headers.update(err.extra_headers())
        body = self.error_body(err, self.error_types[err.category], headers)
        return err.status, json.dumps(body).encode(), headers
