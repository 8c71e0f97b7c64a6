"""Azure OpenAI: OpenAI's format below per-deployment paths, at the operator's own resource."""

from __future__ import annotations

from addon.providers.base import AZURE, Provider, collapse_slashes
from addon.providers.key_health import message_text, openai_key_rejected
from addon.providers.openai_style import OPENAI_STYLE
from addon.providers.openai_style import classify as openai_classify


def classify(method: str, path: str) -> str:
    """``/openai/deployments/{d}/chat/completions`` and ``/openai/v1/chat/completions``."""
    return openai_classify(method, _tail(path))


def _tail(path: str) -> str:
    parts = path.split("/")
    if parts[1:3] == ["openai", "deployments"] and len(parts) > 3:
        return "/" + "/".join(parts[4:])
    if parts[1:3] == ["openai", "v1"]:
        return "/" + "/".join(parts[3:])
    return path


def deployment(path: str) -> str | None:
    parts = collapse_slashes(path.split("?", 1)[0]).split("/")
    if parts[1:3] == ["openai", "deployments"] and len(parts) > 3:
        return parts[3]
    return None


def key_rejected(status: int, body: bytes) -> str | None:
    """401 "Access denied due to invalid subscription key or wrong API endpoint" (code "401"
    or "Unauthorized"). A 401 ``PermissionDenied`` (an Entra role missing) is not the key."""
    if status != 401:
        return None
    if "invalid subscription key" in message_text(body):
        return "401 invalid_subscription_key"
    return openai_key_rejected(status, body)


PROVIDER = Provider(
    name="azure",
    hosts=("*.openai.azure.com", "*.cognitiveservices.azure.com", "*.services.ai.azure.com"),
    default_base_url="",  # per resource: the client's destination, or the key's URL
    auth=AZURE,
    wire=OPENAI_STYLE,
    classify=classify,
    model_in_path=deployment,
    key_rejected=key_rejected,
    test_path="/openai/models?api-version=2024-10-21",
)
