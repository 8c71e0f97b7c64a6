"""What the gateway knows about one provider, and the auth styles it can swap."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

# auth styles: where the client's credential is and how the real one is sent
BEARER = "bearer"  # Authorization: Bearer <key>
ANTHROPIC = "anthropic"  # x-api-key: <key>, or Authorization: Bearer <key>


@dataclass(frozen=True)
class Provider:
    name: str
    hosts: tuple[str, ...]
    default_base_url: str
    auth: str
    error_shape: str
    classify: Callable[[str, str], str]  # (method, path without base prefix) -> api name
    strip_headers: tuple[str, ...] = ()  # client headers that must not reach the provider
    # streams carry usage only when asked (OpenAI's include_usage); False where the provider
    # always sends it (OpenRouter): then nothing is injected and nothing is stripped
    stream_usage_opt_in: bool = True
    # other path prefixes clients use for the same API (DeepSeek serves "" and "/v1")
    alt_base_paths: tuple[str, ...] = ()

    @property
    def base_path(self) -> str:
        return urlsplit(self.default_base_url).path.rstrip("/")

    def api_for(self, method: str, path: str) -> str:
        """The meter name for a request path such as ``/v1/chat/completions?x=1``."""
        bare = path.split("?", 1)[0]
        for prefix in (self.base_path, *self.alt_base_paths):
            if prefix and (bare == prefix or bare.startswith(prefix + "/")):
                bare = bare[len(prefix) :]
                break
        return self.classify(method.upper(), bare.rstrip("/"))


def openai_classify(method: str, path: str) -> str:
    if method == "POST":
        if path == "/chat/completions":
            return "openai.chat"
        if path == "/completions":
            return "openai.completions"
        if path == "/embeddings":
            return "openai.embeddings"
        if path == "/responses":
            return "openai.responses"
    return "openai.other"


def anthropic_classify(method: str, path: str) -> str:
    if method == "POST":
        if path == "/v1/messages":
            return "anthropic.messages"
        if path == "/v1/messages/count_tokens":
            return "anthropic.count_tokens"
    return "anthropic.other"
