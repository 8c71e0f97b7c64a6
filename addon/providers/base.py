"""What the gateway knows about one provider, and the auth styles it can swap."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from addon.providers.key_health import KeyCheck, RetryHint, openai_key_rejected


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
    error_shape: str
    classify: Callable[[str, str], str]  # (method, path without base prefix) -> api name
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
        return self.classify(method.upper(), bare.rstrip("/"))


_SLASHES = re.compile(r"//+")


def collapse_slashes(path: str) -> str:
    """``//openai/deployments/x`` → ``/openai/deployments/x``: older openai SDKs send repeated
    slashes and the providers accept them, so classification must too. Only for reading the
    path; the request is forwarded as the client sent it."""
    return _SLASHES.sub("/", path)


# POST paths of paid OpenAI-style endpoints that are not token APIs (see metering/media.py)
OPENAI_MEDIA_PATHS = {
    "/images/generations": "openai.images",
    "/images/edits": "openai.image_edits",
    "/images/variations": "openai.image_variations",
    "/audio/transcriptions": "openai.transcriptions",
    "/audio/translations": "openai.translations",
    "/audio/speech": "openai.speech",
    "/moderations": "openai.moderations",
}


def openai_classify(method: str, path: str) -> str:
    if path == "/realtime" or path.startswith("/realtime/"):
        return "openai.realtime"  # a websocket (GET) or its sessions: paid, not metered
    if method == "POST":
        if path == "/chat/completions":
            return "openai.chat"
        if path == "/completions":
            return "openai.completions"
        if path == "/embeddings":
            return "openai.embeddings"
        if path == "/responses":
            return "openai.responses"
        if path == "/responses/input_tokens":  # counts a prompt: free
            return "openai.count_tokens"
        if path in OPENAI_MEDIA_PATHS:
            return OPENAI_MEDIA_PATHS[path]
    return "openai.other"


def anthropic_classify(method: str, path: str) -> str:
    if method == "POST":
        if path == "/v1/messages":
            return "anthropic.messages"
        if path == "/v1/messages/count_tokens":
            return "anthropic.count_tokens"
    return "anthropic.other"


def azure_classify(method: str, path: str) -> str:
    """``/openai/deployments/{d}/chat/completions`` and ``/openai/v1/chat/completions``."""
    return openai_classify(method, _azure_tail(path))


def _azure_tail(path: str) -> str:
    parts = path.split("/")
    if parts[1:3] == ["openai", "deployments"] and len(parts) > 3:
        return "/" + "/".join(parts[4:])
    if parts[1:3] == ["openai", "v1"]:
        return "/" + "/".join(parts[3:])
    return path


def azure_deployment(path: str) -> str | None:
    parts = collapse_slashes(path.split("?", 1)[0]).split("/")
    if parts[1:3] == ["openai", "deployments"] and len(parts) > 3:
        return parts[3]
    return None


_GEMINI_OPENAI = re.compile(r"^/v1[a-z0-9]*/openai(/.*)$")


def gemini_classify(method: str, path: str) -> str:
    """``/v1beta/models/{model}:generateContent`` and friends; the OpenAI-compatible API
    (``/v1beta/openai/chat/completions``, ``/embeddings``…) is metered as OpenAI's."""
    if compatible := _GEMINI_OPENAI.match(path):
        return openai_classify(method, compatible.group(1))
    _, _, action = path.rpartition(":")
    if method == "POST" and "/models/" in path:
        if action == "generateContent":
            return "gemini.generate"
        if action == "streamGenerateContent":
            return "gemini.stream"
        if action == "countTokens":
            return "gemini.count_tokens"
    return "gemini.other"


def gemini_model(path: str) -> str | None:
    bare = collapse_slashes(path.split("?", 1)[0])
    if "/models/" not in bare:
        return None
    return bare.split("/models/", 1)[1].split(":", 1)[0] or None
