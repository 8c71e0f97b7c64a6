"""Which upstream answers say the real key is bad, per provider, from real error bodies.

The bodies are the providers' own: the recorded cases in ../shared/realtraffic (when present)
and those quoted in reference/providers.md §2 and the public threads it and key_health cite.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from fakes.recorded import CASES_DIR, SKIP_REASON

from addon.providers.key_health import Answer, judge
from addon.providers.registry import PROVIDERS, custom_provider


def answer(provider: str, status: int, body: object, retry: float | None = None) -> Answer:
    p = PROVIDERS[provider]
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return judge(p.key_rejected, p.retry_hint, status, raw, retry)


def openai_err(message: str, type_: str, code: str | None) -> dict[str, object]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


KEY_BAD = [
    (
        "openai",
        401,
        openai_err(
            "Incorrect API key provided: sk-proj-****1234. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            "invalid_api_key",
        ),
        "401 invalid_api_key",
    ),
    (
        "anthropic",
        401,
        {
            "type": "error",
            "error": {"type": "authentication_error", "message": "invalid x-api-key"},
            "request_id": "req_011CXw8h8A796q3f74Ezmhav",
        },
        "401 authentication_error",
    ),
    (
        "gemini",
        400,
        {
            "error": {
                "code": 400,
                "message": "API key not valid. Please pass a valid API key.",
                "status": "INVALID_ARGUMENT",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"},
                    }
                ],
            }
        },
        "400 API_KEY_INVALID",
    ),
    (
        "azure",
        401,
        {
            "error": {
                "code": "401",
                "message": "Access denied due to invalid subscription key or wrong API endpoint. "
                "Make sure to provide a valid key for an active subscription and use a correct "
                "regional API endpoint for your resource.",
            }
        },
        "401 invalid_subscription_key",
    ),
    (
        "azure",
        401,
        {
            "error": {
                "code": "Unauthorized",
                "message": "Access denied due to invalid subscription key or wrong API endpoint.",
            }
        },
        "401 invalid_subscription_key",
    ),
    (
        "groq",
        401,
        {
            "error": {
                "message": "Invalid API Key",
                "type": "invalid_request_error",
                "code": "invalid_api_key",
            }
        },
        "401 invalid_api_key",
    ),
    (
        "together",
        401,
        openai_err(
            "Invalid API key provided. You can find your API key at "
            "https://api.together.xyz/settings/api-keys.",
            "invalid_request_error",
            "invalid_api_key",
        ),
        "401 invalid_api_key",
    ),
    (
        "deepseek",
        401,
        openai_err(
            "Authentication Fails, Your api key: ****d569 is invalid",
            "authentication_error",
            "invalid_request_error",
        ),
        "401 authentication_error",
    ),
    ("mistral", 401, {"detail": "Unauthorized"}, "401 unauthorized"),
    (
        "mistral",
        401,
        {"message": "Unauthorized", "request_id": "c61f2f15feca71626a990e3740f99245"},
        "401 unauthorized",
    ),
    (
        "xai",
        400,
        {
            "code": "Client specified an invalid argument",
            "error": "Incorrect API key provided: xa***AB. You can obtain an API key from "
            "https://console.x.ai.",
        },
        "400 incorrect_api_key",
    ),
    (
        "xai",
        400,
        {
            "code": "Client specified an invalid argument",
            "error": "Incorrect%20API%20key%20provided:%20ba***na.",
        },
        "400 incorrect_api_key",
    ),
    ("openrouter", 401, {"error": {"message": "User not found.", "code": 401}}, "401 invalid_key"),
    (
        "openrouter",
        401,
        {"error": {"message": "No auth credentials found", "code": 401}},
        "401 invalid_key",
    ),
]


@pytest.mark.parametrize(("provider", "status", "body", "reason"), KEY_BAD)
def test_answers_that_say_the_key_is_bad_count_against_it(
    provider: str, status: int, body: object, reason: str
) -> None:
    assert answer(provider, status, body) == Answer("key_rejected", reason)


REQUEST_LEVEL = [
    (  # an organisation or project may not use the model
        "openai",
        403,
        openai_err(
            "Project `proj_abc123` does not have access to model `gpt-4o`",
            "invalid_request_error",
            "model_not_found",
        ),
    ),
    (  # a restricted key lacks a scope
        "openai",
        401,
        openai_err(
            "You have insufficient permissions for this operation. Missing scopes: "
            "model.request. Check that you have the correct role in your organization.",
            "invalid_request_error",
            None,
        ),
    ),
    ("openai", 401, openai_err("IP not authorized", "invalid_request_error", None)),
    (
        "anthropic",
        403,
        {
            "type": "error",
            "error": {
                "type": "permission_error",
                "message": "Your API key does not have permission to use the specified resource.",
            },
        },
    ),
    (
        "gemini",
        403,
        {
            "error": {
                "code": 403,
                "message": "Method doesn't allow unregistered callers.",
                "status": "PERMISSION_DENIED",
            }
        },
    ),
    (
        "gemini",
        400,
        {
            "error": {
                "code": 400,
                "message": "* GenerateContentRequest.contents: contents is not specified\n",
                "status": "INVALID_ARGUMENT",
            }
        },
    ),
    (  # Entra ID role missing: the credential works, the principal lacks a data action
        "azure",
        401,
        {
            "error": {
                "code": "PermissionDenied",
                "message": "The principal lacks the required data action "
                "Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action.",
            }
        },
    ),
    ("openai", 404, openai_err("Invalid URL (POST /v1/nothing)", "invalid_request_error", None)),
    ("mistral", 400, {"object": "error", "message": "Invalid model: x", "type": "invalid_model"}),
    ("openai", 401, b"<html>401 Authorization Required</html>"),  # a proxy on the way
]


@pytest.mark.parametrize(("provider", "status", "body"), REQUEST_LEVEL)
def test_answers_about_the_request_leave_the_key_alone(
    provider: str, status: int, body: object
) -> None:
    assert answer(provider, status, body).verdict == "refused"


def test_a_429_is_a_rate_limit_with_the_header_wait() -> None:
    body = openai_err("Rate limit reached", "requests", "rate_limit_exceeded")
    assert answer("openai", 429, body, 7.0) == Answer(
        "rate_limited", "429 rate_limit_exceeded", 7.0
    )


def test_gemini_names_its_wait_in_the_body() -> None:
    body = {
        "error": {
            "code": 429,
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}],
        }
    }
    assert answer("gemini", 429, body) == Answer("rate_limited", "429 RESOURCE_EXHAUSTED", 17.0)


def test_server_errors_say_nothing_about_the_key() -> None:
    assert answer("anthropic", 529, {"type": "error", "error": {"type": "overloaded_error"}}) == (
        Answer("unknown", "529 overloaded_error")
    )


def test_success_is_ok() -> None:
    assert answer("openai", 200, {"id": "x"}) == Answer("ok")


def test_a_reason_never_carries_the_providers_message() -> None:
    body = openai_err("Incorrect API key provided: sk-proj-****1234", "x", "invalid api key sk-1")
    reason = answer("openai", 403, body).reason
    assert reason == "403 invalid_api_key_sk-1" and "Incorrect" not in reason


@pytest.mark.parametrize(
    ("wire_format", "status", "body", "verdict"),
    [
        ("openai", 401, {"error": "Unauthorized"}, "key_rejected"),  # vLLM --api-key
        (
            "openai",
            401,
            openai_err("bad", "invalid_request_error", "invalid_api_key"),
            "key_rejected",
        ),
        ("openai", 403, {"error": "Forbidden"}, "refused"),
        (
            "anthropic",
            401,
            {"type": "error", "error": {"type": "authentication_error"}},
            "key_rejected",
        ),
        ("anthropic", 403, {"type": "error", "error": {"type": "permission_error"}}, "refused"),
    ],
)
def test_defined_providers_follow_their_wire_format(
    wire_format: str, status: int, body: object, verdict: str
) -> None:
    p = custom_provider(
        name="local", base_url="http://127.0.0.1:8000/v1", hosts=(), auth="bearer",
        wire_format=wire_format,
    )  # fmt: skip
    assert judge(p.key_rejected, p.retry_hint, status, json.dumps(body).encode(), None).verdict == (
        verdict
    )


def _recorded_errors() -> list[Path]:
    if not CASES_DIR.is_dir():
        return []
    return sorted(
        p
        for p in CASES_DIR.glob("*.json")
        if json.loads(p.read_text())["response"]["status"] >= 400
    )


@pytest.mark.skipif(not CASES_DIR.is_dir(), reason=SKIP_REASON)
@pytest.mark.parametrize("path", _recorded_errors(), ids=lambda p: p.stem)
def test_recorded_provider_errors_are_judged_as_what_they_are(path: Path) -> None:
    """Every recorded error (bad model names, bad requests, an upstream rate limit) is about
    the request, never the key; a 429 cools the key for a while."""
    case = json.loads(path.read_text())
    status = case["response"]["status"]
    body = base64.b64decode(case["response"]["body_b64"])
    result = answer(case["provider"], status, body)
    assert result.verdict == ("rate_limited" if status == 429 else "refused")
