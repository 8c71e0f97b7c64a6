"""Gemini-shaped bodies for the fake upstream: generateContent, both stream framings, errors.

Shapes follow /work/shared/reference/providers.md (§1.5 Gemini, §1.12 payloads 15 and 16, §2.3
errors). The usage a reply carries comes from `payloads.GEMINI_USAGE` (FakeUpstream.usage
["gemini"]); a stream carries running totals whose last value is exactly that dict.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from fakes.payloads import Event, new_id, split_text

CONTENT_TYPE = "application/json; charset=UTF-8"
MODELS = ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.5-flash-lite")

ERRORS: dict[int, tuple[str, str]] = {  # status code -> (google.rpc status, message)
    400: ("INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."),
    401: (
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
        "cookie or other valid authentication credential.",
    ),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "Requested entity was not found."),
    429: (
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
    ),
    500: ("INTERNAL", "An internal error has occurred. Please retry or report in "
                      "https://developers.generativeai.google/guide/troubleshooting"),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "The request timed out. Please try again."),
}  # fmt: skip
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


def pretty(obj: object) -> bytes:
    """Google's JSON replies (and stream array elements) are indented by two spaces."""
    return json.dumps(obj, indent=2, ensure_ascii=False).encode()


def generate_json(model: str, text: str, usage: dict[str, Any], rid: str) -> dict[str, Any]:
    return _response(model, rid, text, "STOP", usage)


def _response(
    model: str, rid: str, text: str, finish: str | None, usage: dict[str, Any]
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}}
    if finish is not None:
        candidate["finishReason"] = finish
    candidate["index"] = 0
    return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model,
            "responseId": rid}  # fmt: skip


def running_usage(usage: dict[str, Any], done: int, pieces: int) -> dict[str, Any]:
    """The usageMetadata after `done` of `pieces` chunks: candidates grow, the rest (prompt,
    cache, thoughts, which come before any output) are there from the start; the last chunk
    carries `usage` itself. A summing meter would overcount; the last value is right."""
    if done >= pieces:
        return copy.deepcopy(usage)
    full = int(usage.get("candidatesTokenCount", 0))
    part = full * done // pieces
    out = {k: copy.deepcopy(v) for k, v in usage.items() if k != "candidatesTokensDetails"}
    out["candidatesTokenCount"] = part
    if "totalTokenCount" in usage:
        out["totalTokenCount"] = int(usage["totalTokenCount"]) - full + part
    return out


def stream_objects(model: str, text: str, usage: dict[str, Any]) -> list[dict[str, Any]]:
    """One GenerateContentResponse per piece of text; the last one has finishReason STOP."""
    rid = new_id("")
    pieces = split_text(text)
    return [
        _response(
            model,
            rid,
            piece,
            "STOP" if index == len(pieces) else None,
            running_usage(usage, index, len(pieces)),
        )
        for index, piece in enumerate(pieces, start=1)
    ]


def sse_stream(model: str, text: str, usage: dict[str, Any]) -> list[Event]:
    """`?alt=sse`: `data: {json}` blocks separated by CRLF CRLF, no event names, no [DONE]."""
    return [
        Event(b"data: " + json.dumps(obj).encode() + b"\r\n\r\n", content=True)
        for obj in stream_objects(model, text, usage)
    ]


def array_stream(model: str, text: str, usage: dict[str, Any]) -> list[Event]:
    """Without alt=sse: a JSON array sent element by element, `[{...}\\n,\\r\\n{...}\\n]`."""
    objects = stream_objects(model, text, usage)
    events = [
        Event((b"[" if index == 0 else b"\n,\r\n") + pretty(obj), content=True)
        for index, obj in enumerate(objects)
    ]
    return [*events, Event(b"\n]")]


def midstream_error(api: str) -> bytes:
    """What follows the content when a stream fails: in SSE raw multi-line JSON (which the SDK
    brace-balances), in an array one more element and the closing bracket."""
    error = pretty(error_body(500))
    return error + b"\n" if api == "gemini_sse" else b"\n,\r\n" + error + b"\n]"


def error_body(
    status: int, *, message: str | None = None, retry_after: int | None = None
) -> dict[str, Any]:
    """`{"error": {"code", "message", "status", "details"}}` as Google sends it. A 400 without
    a message is the bad-API-key answer (ErrorInfo reason API_KEY_INVALID); a 429 carries
    QuotaFailure, Help and RetryInfo details."""
    name, default = ERRORS.get(status, ("INTERNAL" if status >= 500 else "FAILED_PRECONDITION",
                                        f"Fake upstream error {status}."))  # fmt: skip
    error: dict[str, Any] = {"code": status, "message": message or default, "status": name}
    if status == 400 and message is None:
        error["details"] = [
            {"@type": ERROR_INFO, "reason": "API_KEY_INVALID", "domain": "googleapis.com",
             "metadata": {"service": "generativelanguage.googleapis.com"}},
            {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
             "message": default},
        ]  # fmt: skip
    elif status == 429:
        quota = "generativelanguage.googleapis.com/generate_content_free_tier_requests"
        error["details"] = [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
                {"quotaMetric": quota, "quotaId": "GenerateRequestsPerMinutePerProjectPerModel"}]},
            {"@type": "type.googleapis.com/google.rpc.Help", "links": [
                {"description": "Learn more about Gemini API quotas",
                 "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
            {"@type": RETRY_INFO, "retryDelay": f"{retry_after if retry_after else 1}s"},
        ]  # fmt: skip
    return {"error": error}


def models_list() -> dict[str, Any]:
    return {
        "models": [
            {
                "name": f"models/{model}",
                "displayName": model,
                "supportedGenerationMethods": ["generateContent", "countTokens"],
            }
            for model in MODELS
        ]
    }
