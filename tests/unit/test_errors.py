"""Provider-shaped gateway errors: the wire shape, and what the official SDKs make of it."""

from __future__ import annotations

import json
from collections.abc import Callable

import anthropic
import httpx2
import openai
import pytest

from addon.errors import (
    CATEGORIES,
    BudgetExceeded,
    GatewayError,
    GatewayFault,
    InvalidKey,
    NoRealKey,
    NotAllowed,
    RateLimited,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from addon.providers.anthropic_style import ANTHROPIC_STYLE
from addon.providers.gemini import GEMINI_STYLE
from addon.providers.openai_style import OPENAI_STYLE
from addon.providers.registry import PROVIDERS
from addon.providers.wire_format import Rendered

SHAPES = {"openai": OPENAI_STYLE, "anthropic": ANTHROPIC_STYLE, "gemini": GEMINI_STYLE}


def render(err: GatewayError, shape: str) -> Rendered:
    """``err`` as a client of the wire format ``shape`` receives it."""
    return SHAPES[shape].render_error(err)


# (error, status, code, openai type, openai code, anthropic type, gemini status)
CASES: list[tuple[GatewayError, int, str, str, str, str, str]] = [
    (
        InvalidKey("bad key"),
        401,
        "invalid_key",
        "invalid_request_error",
        "invalid_api_key",
        "authentication_error",
        "UNAUTHENTICATED",
    ),
    (
        NotAllowed("no"),
        403,
        "not_allowed",
        "invalid_request_error",
        "not_allowed",
        "permission_error",
        "PERMISSION_DENIED",
    ),
    (
        BudgetExceeded("spent"),
        429,
        "budget_exceeded",
        "insufficient_quota",
        "insufficient_quota",
        "rate_limit_error",
        "RESOURCE_EXHAUSTED",
    ),
    (
        RateLimited("slow down", retry_after_s=7),
        429,
        "rate_limited",
        "requests",
        "rate_limited",
        "rate_limit_error",
        "RESOURCE_EXHAUSTED",
    ),
    (
        NoRealKey("no key"),
        503,
        "no_real_key",
        "server_error",
        "no_real_key",
        "api_error",
        "UNAVAILABLE",
    ),
    (
        UpstreamUnreachable("down"),
        502,
        "upstream_unreachable",
        "server_error",
        "upstream_unreachable",
        "api_error",
        "UNAVAILABLE",
    ),
    (
        UpstreamTimeout("slow"),
        504,
        "upstream_timeout",
        "server_error",
        "upstream_timeout",
        "timeout_error",
        "DEADLINE_EXCEEDED",
    ),
    (
        GatewayFault("oops"),
        500,
        "gateway_error",
        "server_error",
        "gateway_error",
        "api_error",
        "INTERNAL",
    ),
]
IDS = [type(c[0]).__name__ for c in CASES]
ANTHROPIC_TYPES = {type(c[0]): c[5] for c in CASES}


@pytest.mark.parametrize(("err", "status", "code", "otype", "ocode", "_a", "_g"), CASES, ids=IDS)
def test_openai_shape(
    err: GatewayError, status: int, code: str, otype: str, ocode: str, _a: str, _g: str
) -> None:
    got_status, body, headers = render(err, "openai")
    assert got_status == status
    assert json.loads(body) == {
        "error": {"message": err.message, "type": otype, "param": None, "code": ocode}
    }
    assert headers["content-type"] == "application/json"
    assert headers["x-tollkeeper-error"] == code


@pytest.mark.parametrize(("err", "status", "code", "_t", "_c", "atype", "_g"), CASES, ids=IDS)
def test_anthropic_shape(
    err: GatewayError, status: int, code: str, _t: str, _c: str, atype: str, _g: str
) -> None:
    got_status, body, headers = render(err, "anthropic")
    doc = json.loads(body)
    assert got_status == status
    assert doc["type"] == "error"
    assert doc["error"] == {"type": atype, "message": err.message}
    assert doc["request_id"] == headers["request-id"]
    assert doc["request_id"].startswith("req_")
    assert headers["x-tollkeeper-error"] == code


def test_anthropic_request_ids_are_unique() -> None:
    ids = {render(InvalidKey("x"), "anthropic")[2]["request-id"] for _ in range(50)}
    assert len(ids) == 50


@pytest.mark.parametrize(("err", "status", "code", "_t", "_c", "_a", "gstatus"), CASES, ids=IDS)
def test_gemini_shape(
    err: GatewayError, status: int, code: str, _t: str, _c: str, _a: str, gstatus: str
) -> None:
    got_status, body, headers = render(err, "gemini")
    assert got_status == status
    assert json.loads(body) == {
        "error": {"code": status, "message": err.message, "status": gstatus}
    }
    assert headers["x-tollkeeper-error"] == code


def test_azure_and_the_compatible_family_answer_in_openai_shape() -> None:
    for name in ("azure", "mistral", "openrouter"):
        body = PROVIDERS[name].render_error(InvalidKey("x"))[1]
        assert json.loads(body)["error"]["code"] == "invalid_api_key"


def test_every_category_has_a_type_in_every_shape() -> None:
    for wire in SHAPES.values():
        assert set(wire.error_types) == CATEGORIES


@pytest.mark.parametrize("shape", ["openai", "anthropic", "gemini"])
def test_retry_after_is_sent_when_the_error_has_one(shape: str) -> None:
    _, _, headers = render(RateLimited("slow down", retry_after_s=12), shape)
    assert headers["retry-after"] == "12"
    assert "x-should-retry" not in headers
    _, _, plain = render(InvalidKey("x"), shape)
    assert "retry-after" not in plain


@pytest.mark.parametrize("shape", ["openai", "anthropic", "gemini"])
def test_budget_exhausted_tells_sdks_not_to_retry(shape: str) -> None:
    _, _, headers = render(BudgetExceeded("spent"), shape)
    assert headers["x-should-retry"] == "false"
    _, _, with_wait = render(BudgetExceeded("spent", retry_after_s=3600), shape)
    assert (with_wait["x-should-retry"], with_wait["retry-after"]) == ("false", "3600")


def test_no_real_key_can_say_when_to_retry() -> None:
    _, _, headers = render(NoRealKey("cooling", retry_after_s=31), "openai")
    assert headers["retry-after"] == "31"


def test_every_error_is_a_gateway_error_with_its_own_code() -> None:
    errors = [c[0] for c in CASES]
    assert all(isinstance(e, GatewayError) for e in errors)
    assert len({e.code for e in errors}) == len(errors)


# --- the official SDKs ------------------------------------------------------------------


class Recorder:
    """A MockTransport handler that answers every request with one rendered error."""

    def __init__(self, err: GatewayError, shape: str) -> None:
        self.status, self.body, self.headers = render(err, shape)
        self.calls = 0

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.calls += 1
        return httpx2.Response(self.status, content=self.body, headers=self.headers)


def openai_call(handler: Recorder, max_retries: int = 0) -> None:
    client = openai.OpenAI(
        api_key="tk-abcdefghij-" + "0" * 40,
        base_url="http://gateway.test/v1",
        max_retries=max_retries,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )
    with client:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )


def anthropic_call(handler: Recorder, max_retries: int = 0) -> None:
    client = anthropic.Anthropic(
        api_key="tk-abcdefghij-" + "0" * 40,
        base_url="http://gateway.test",
        max_retries=max_retries,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )
    with client:
        client.messages.create(
            model="claude-haiku-4-5", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )


@pytest.mark.parametrize(
    ("err", "exc_type", "code"),
    [
        (InvalidKey("bad key"), openai.AuthenticationError, "invalid_api_key"),
        (NotAllowed("no"), openai.PermissionDeniedError, "not_allowed"),
        (BudgetExceeded("spent"), openai.RateLimitError, "insufficient_quota"),
        (RateLimited("slow", retry_after_s=5), openai.RateLimitError, "rate_limited"),
        (NoRealKey("none"), openai.InternalServerError, "no_real_key"),
        (UpstreamUnreachable("down"), openai.InternalServerError, "upstream_unreachable"),
        (UpstreamTimeout("slow"), openai.InternalServerError, "upstream_timeout"),
        (GatewayFault("oops"), openai.InternalServerError, "gateway_error"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, GatewayError) else None,
)
def test_openai_sdk_raises_its_usual_exception(
    err: GatewayError, exc_type: type[openai.APIStatusError], code: str
) -> None:
    handler = Recorder(err, "openai")
    with pytest.raises(exc_type) as exc_info:
        openai_call(handler)
    e = exc_info.value
    assert e.status_code == err.status
    assert e.code == code
    assert isinstance(e.body, dict) and e.body["message"] == err.message
    assert e.response.headers["x-tollkeeper-error"] == err.code
    assert handler.calls == 1


@pytest.mark.parametrize(
    ("err", "exc_type"),
    [
        (InvalidKey("bad key"), anthropic.AuthenticationError),
        (NotAllowed("no"), anthropic.PermissionDeniedError),
        (BudgetExceeded("spent"), anthropic.RateLimitError),
        (RateLimited("slow", retry_after_s=5), anthropic.RateLimitError),
        (NoRealKey("none"), anthropic.ServiceUnavailableError),
        (UpstreamUnreachable("down"), anthropic.InternalServerError),
        (UpstreamTimeout("slow"), anthropic.GatewayTimeoutError),
        (GatewayFault("oops"), anthropic.InternalServerError),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, GatewayError) else None,
)
def test_anthropic_sdk_raises_its_usual_exception(
    err: GatewayError, exc_type: type[anthropic.APIStatusError]
) -> None:
    handler = Recorder(err, "anthropic")
    with pytest.raises(exc_type) as exc_info:
        anthropic_call(handler)
    e = exc_info.value
    assert e.status_code == err.status
    assert e.type == ANTHROPIC_TYPES[type(err)]
    assert e.api_message == err.message
    assert e.request_id == handler.headers["request-id"]
    assert handler.calls == 1


def test_openai_sdk_sees_retry_after() -> None:
    with pytest.raises(openai.RateLimitError) as exc_info:
        openai_call(Recorder(RateLimited("slow", retry_after_s=9), "openai"))
    assert exc_info.value.response.headers["retry-after"] == "9"


SdkCall = Callable[[Recorder, int], None]


@pytest.mark.parametrize("call", [openai_call, anthropic_call], ids=["openai", "anthropic"])
def test_sdks_do_not_retry_an_exhausted_budget(call: SdkCall) -> None:
    handler = Recorder(BudgetExceeded("spent"), "openai" if call is openai_call else "anthropic")
    with pytest.raises((openai.RateLimitError, anthropic.RateLimitError)):
        call(handler, 2)
    assert handler.calls == 1


@pytest.mark.parametrize("call", [openai_call, anthropic_call], ids=["openai", "anthropic"])
def test_sdks_do_retry_a_gateway_503_without_the_no_retry_header(call: SdkCall) -> None:
    """The contrast that shows the previous test measures the header, not a quirk."""
    handler = Recorder(NoRealKey("none"), "openai" if call is openai_call else "anthropic")
    with pytest.raises((openai.InternalServerError, anthropic.InternalServerError)):
        call(handler, 1)
    assert handler.calls == 2
