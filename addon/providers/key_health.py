"""Which upstream answers say that the real key itself is bad: the verdict, and the checks
and body readers the providers share (each provider's own check is in its module).

Only such answers count against a key. Everything else a provider refuses — a model the
organisation may not use (403 ``model_not_found``, Anthropic ``permission_error``, Gemini
``PERMISSION_DENIED``), a scope a restricted key lacks, a path the upstream does not serve
(404), a malformed request (400) — is about the request: it passes through to the client and
leaves the key alone, so one tenant's odd request never takes the key away from the others.

The bodies matched here are the providers' own (see reference/providers.md §2 and the cited
threads): OpenAI ``401 invalid_api_key``; Anthropic ``401 authentication_error``; Gemini
``400 INVALID_ARGUMENT`` with ErrorInfo reason ``API_KEY_INVALID``; Azure ``401`` "Access
denied due to invalid subscription key"; Groq and Together ``401 invalid_api_key``; DeepSeek
``401 authentication_error``; Mistral ``401 Unauthorized`` (its only 401); xAI ``400``
"Incorrect API key provided"; OpenRouter ``401`` "User not found." / "No auth credentials
found"; vLLM (a common self-hosted OpenAI-compatible server) ``401 {"error": "Unauthorized"}``.

A reason is short and stable ("401 invalid_api_key"): never the provider's message, which may
echo part of the key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

KeyCheck = Callable[[int, bytes], str | None]  # (status, body) -> why the key is bad, or None
RetryHint = Callable[[bytes], float | None]  # a wait the body names (Gemini's RetryInfo)

_TOKEN = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Answer:
    """What one upstream answer says about the real key that was used.

    ``verdict``: "ok" (a 2xx/3xx answer), "refused" (a 4xx about the request: the provider
    authenticated the key and judged the request), "key_rejected" (the credential itself is
    bad), "rate_limited" (429: the key works but must wait ``retry_after_s``) or "unknown" (a
    5xx, which says nothing about the key)."""

    verdict: str
    reason: str | None = None
    retry_after_s: float | None = None


def judge(
    check: KeyCheck,
    retry_hint: RetryHint | None,
    status: int,
    body: bytes,
    retry_after_s: float | None,
) -> Answer:
    """The answer's meaning for the key, from its status, body and ``retry-after``."""
    reason = check(status, body) if status >= 400 else None
    if reason is not None:
        return Answer("key_rejected", reason)
    if status == 429:
        if retry_after_s is None and retry_hint is not None:
            retry_after_s = retry_hint(body)
        return Answer("rate_limited", f"429 {error_token(body) or 'rate_limited'}", retry_after_s)
    if status >= 500:
        return Answer("unknown", f"{status} {error_token(body) or 'server_error'}")
    if status >= 400:
        return Answer("refused", f"{status} {error_token(body) or 'error'}")
    return Answer("ok")


def error_token(body: bytes) -> str | None:
    """The error's code, type or status word (``model_not_found``), safe to store and show."""
    err = error_object(body)
    for name in ("code", "type", "status"):
        value = err.get(name)
        if isinstance(value, str) and value:
            return _TOKEN.sub("_", value)[:64]
    return None


def error_object(body: bytes) -> dict[str, Any]:
    """``body["error"]`` when it is an object (OpenAI, Anthropic, Gemini and most others)."""
    doc = _json(body)
    if isinstance(doc, list) and doc:  # Gemini's streamed-array endpoints wrap errors in [ ]
        doc = doc[0]
    err = doc.get("error") if isinstance(doc, dict) else None
    return err if isinstance(err, dict) else {}


def _json(body: bytes) -> Any:
    try:
        return json.loads(body[:65536] or b"null")
    except ValueError:
        return None


def message_text(body: bytes) -> str:
    err = error_object(body)
    doc = _json(body)
    parts = [err.get("message"), err.get("code")]
    if isinstance(doc, dict):
        parts += [doc.get("message"), doc.get("detail"), doc.get("error")]
    return " ".join(p for p in parts if isinstance(p, str)).lower()


def openai_key_rejected(status: int, body: bytes) -> str | None:
    """OpenAI and the family that copies its errors (Groq, Together, Fireworks …): 401 with
    code ``invalid_api_key``. Other 401s (a missing scope of a restricted key, "IP not
    authorized") and every 403 are about the request."""
    err = error_object(body)
    if status == 401 and err.get("code") == "invalid_api_key":
        return "401 invalid_api_key"
    return None


def compatible_key_rejected(status: int, body: bytes) -> str | None:
    """OpenAI-compatible servers: OpenAI's code, an ``authentication_error`` type (DeepSeek,
    Anthropic-shaped servers) or vLLM's bare ``{"error": "Unauthorized"}``."""
    if status != 401:
        return None
    err = error_object(body)
    if err.get("code") == "invalid_api_key":
        return "401 invalid_api_key"
    if err.get("type") == "authentication_error":
        return "401 authentication_error"
    doc = _json(body)
    if isinstance(doc, dict) and doc.get("error") == "Unauthorized":
        return "401 unauthorized"
    return None


def detail_values(body: bytes, name: str) -> list[str]:
    details = error_object(body).get("details")
    if not isinstance(details, list):
        return []
    values = (d.get(name) for d in details if isinstance(d, dict))
    return [v for v in values if isinstance(v, str)]
