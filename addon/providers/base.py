"""What the gateway knows about one provider, and the auth styles it can swap.

Each provider is one module beside this one (``openai.py``, ``gemini.py`` …) that builds its
``Provider``; ``registry.py`` lists the built-ins. What a provider shares with others — its
wire format: meters, stream framing, prompt text, error shape — is a ``WireFormat`` object.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from addon.errors import GatewayError
from addon.providers.key_health import KeyCheck, RetryHint, openai_key_rejected
from addon.providers.wire_format import Rendered, WireFormat


@dataclass(frozen=True)
class AuthStyle:
    """Where a client puts its key for this provider, and how the real key is sent.

    The client's credential is looked for in ``header`` (raw or ``Bearer``), then in
    ``Authorization: Bearer`` and in the query parameter ``query_param``; the real key is
    sent in ``header`` only (with a ``Bearer`` prefix when ``bearer``)."""

    name: str
    header: str
    bearer: bool = False
    query_param: str | None = None

    def real_header(self, secret: str) -> tuple[str, str]:
        return self.header, f"Bearer {secret}" if self.bearer else secret


BEARER = AuthStyle("bearer", "authorization", bearer=True)  # OpenAI and the compatibles
ANTHROPIC = AuthStyle("anthropic", "x-api-key")  # or Authorization: Bearer (newer SDKs)
AZURE = AuthStyle("azure", "api-key")
GEMINI = AuthStyle("gemini", "x-goog-api-key", query_param="key")


@dataclass(frozen=True)
class Provider:
    name: str
    hosts: tuple[str, ...]
    default_base_url: str
    auth: AuthStyle
    wire: WireFormat  # its dialect; its errors are rendered in this format's shape
    # (method, path without base prefix) -> api name; None: the wire format's classification
    classify: Callable[[str, str], str] | None = None
    strip_headers: tuple[str, ...] = ()  # client headers that must not reach the provider
    # streams carry usage only when asked (OpenAI's include_usage); False where the provider
    # always sends it (OpenRouter): then nothing is injected and nothing is stripped
    stream_usage_opt_in: bool = True
    # other path prefixes clients use for the same API (DeepSeek serves "" and "/v1")
    alt_base_paths: tuple[str, ...] = ()
    # where the URL names the model (Gemini) or the deployment (Azure)
    model_in_path: Callable[[str], str | None] | None = None
    # key health: which error answers say the credential itself is bad (see key_health)
    key_rejected: KeyCheck = openai_key_rejected
    retry_hint: RetryHint | None = None  # a wait named in the body instead of retry-after
    # `tollkeeper providers test`: one cheap authenticated GET, below the base URL
    test_path: str = "/models"
    test_headers: tuple[tuple[str, str], ...] = ()

    def render_error(self, err: GatewayError) -> Rendered:
        """(status, body, headers) of the gateway's own error, shaped as the provider's."""
        return self.wire.render_error(err)

    @property
    def request_id_header(self) -> str:
        """The response header that carries the provider's request id."""
        return self.wire.request_id_header

    def injects_include_usage(self, api: str) -> bool:
        """Whether a streamed request of ``api`` must be given
        ``stream_options.include_usage`` for its stream to report usage."""
        return self.stream_usage_opt_in and api in self.wire.include_usage_apis

    @property
    def keeps_destination(self) -> bool:
        """No fixed upstream (Azure resources): without a base URL on the real key, the
        request goes where the client sent it."""
        return not self.default_base_url

    def matches_host(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        for pattern in self.hosts:
            if pattern.startswith("*."):
                if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                    return True
            elif host == pattern:
                return True
        return False

    @property
    def base_path(self) -> str:
        return urlsplit(self.default_base_url).path.rstrip("/")

    def api_for(self, method: str, path: str) -> str:
        """The meter name for a request path such as ``/v1/chat/completions?x=1``."""
        bare = collapse_slashes(path.split("?", 1)[0])
        for prefix in (self.base_path, *self.alt_base_paths):
            if prefix and (bare == prefix or bare.startswith(prefix + "/")):
                bare = bare[len(prefix) :]
                break
        classify = self.classify or self.wire.classify
        return classify(method.upper(), bare.rstrip("/"))


_SLASHES = re.compile(r"//+")


def collapse_slashes(path: str) -> str:
    """``//openai/deployments/x`` → ``/openai/deployments/x``: older openai SDKs send repeated
    slashes and the providers accept them, so classification must too. Only for reading the
    path; the request is forwarded as the client sent it."""
    return _SLASHES.sub("/", path)
