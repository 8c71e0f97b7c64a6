"""From an api name to its wire format, for code that holds an api name but no provider (the
response hooks, the records, the writer thread).

An api name starts with its format's prefix (``openai.chat``: OpenAI's format, whoever serves
it). The formats are those of the built-in providers; a name of no known format is read as
OpenAI's, the format of every unknown compatible server. The api sets here are the union over
the formats, so the hooks and the records never switch on names.
"""

from __future__ import annotations

from addon.metering.stream import StreamMeter
from addon.metering.usage import MeterResult
from addon.providers.openai_style import OPENAI_STYLE
from addon.providers.registry import PROVIDERS
from addon.providers.wire_format import WireFormat

FORMATS: dict[str, WireFormat] = {p.wire.prefix: p.wire for p in PROVIDERS.values()}

TOKEN_APIS = frozenset().union(*(w.token_apis for w in FORMATS.values()))
MEDIA_APIS = frozenset().union(*(w.media_apis for w in FORMATS.values()))
FREE_APIS = frozenset().union(*(w.free_apis for w in FORMATS.values()))
# every API the gateway meters and prices (the request body is kept for these)
BILLABLE_APIS = TOKEN_APIS | MEDIA_APIS


def wire_for(api: str) -> WireFormat:
    return FORMATS.get(api.partition(".")[0], OPENAI_STYLE)


def parse_response(api: str, body: bytes) -> MeterResult:
    """Usage, model and provider error of a buffered answer of ``api``; never raises."""
    return wire_for(api).parse_json(api, body)


def prompt_text(api: str, body: object) -> str:
    """The countable text of a parsed request body of ``api``."""
    return wire_for(api).prompt_text(api, body)


def estimate_prompt_tokens(api: str, body: object, model: str | None) -> int:
    """Estimated input tokens of a parsed request body of ``api`` for ``model``."""
    return wire_for(api).estimate_prompt_tokens(api, body, model)


def always_streams(api: str) -> bool:
    """An answer of ``api`` is metered as a stream whatever its ``content-type``."""
    return api in wire_for(api).streamed_apis


def stream_meter(
    api: str,
    *,
    strip_injected_usage: bool = False,
    content_encoding: str | None = None,
    content_type: str | None = None,
) -> StreamMeter:
    """The meter of a streamed answer of ``api``, with its format's events and framing."""
    wire = wire_for(api)
    return StreamMeter(
        api,
        events=lambda state: wire.stream_events(api, state),
        new_splitter=wire.framing(content_type),
        strip_injected_usage=strip_injected_usage,
        content_encoding=content_encoding,
    )
