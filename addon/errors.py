"""Errors the gateway itself answers with; each provider renders them in its own shape.

Hierarchy (each class carries its HTTP status, its ``x-tollkeeper-error`` code and a neutral
``category`` that the provider's wire format turns into its own error type)::

    GatewayError                   internal
    ├── InvalidAttribution    400  invalid_request  a malformed x-tollkeeper-user / -tags header
    ├── InvalidKey            401  authentication   missing / unknown / malformed / revoked /
    │                                               expired key
    ├── NotAllowed            403  permission       provider or model not allowed for the key
    ├── BudgetExceeded        429  quota            budget exhausted (x-should-retry: false)
    ├── RateLimited           429  rate_limit       RPM/TPM/parallel limit (retry-after)
    ├── NoRealKey             503  unavailable      no usable real key: the message says how
    │                                               many keys there are, why each is out and
    │                                               when the next try is (pool.py)
    ├── NotRecording          503  unavailable      usage can be neither written nor spooled
    ├── UpstreamUnreachable   502  unavailable
    │   └── AnswerWithheld    502  unavailable      the upstream's answer held the real key,
    │                                               too big to scrub
    ├── UpstreamTimeout       504  timeout
    └── GatewayFault          500  internal         a fault inside the addon (fail closed)

The categories are ``CATEGORIES``; ``overloaded`` is for the gateway's own database being out
of reach (``addon.admission``, ``addon.lookups``). ``Provider.render_error(err)``
(``addon/providers``) turns an error into the (status, body, headers) its clients expect.
"""

from __future__ import annotations

from typing import ClassVar

CATEGORIES = frozenset(
    {
        "internal",
        "invalid_request",
        "authentication",
        "permission",
        "quota",
        "rate_limit",
        "unavailable",
        "overloaded",
        "timeout",
    }
)


class GatewayError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "gateway_error"
    category: ClassVar[str] = "internal"

    def __init__(self, message: str, *, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s

    def extra_headers(self) -> dict[str, str]:
        if self.retry_after_s is None:
            return {}
        return {"retry-after": str(self.retry_after_s)}


class InvalidAttribution(GatewayError):
    status, code = 400, "invalid_attribution"
    category = "invalid_request"


class InvalidRequest(GatewayError):
    """A request no HTTP client sends, refused before anything of it reaches the provider."""

    status, code = 400, "invalid_request"
    category = "invalid_request"


class InvalidKey(GatewayError):
    status, code = 401, "invalid_key"
    category = "authentication"


class NotAllowed(GatewayError):
    status, code = 403, "not_allowed"
    category = "permission"


class BudgetExceeded(GatewayError):
    status, code = 429, "budget_exceeded"
    category = "quota"

    def extra_headers(self) -> dict[str, str]:
        return {**super().extra_headers(), "x-should-retry": "false"}


class RateLimited(GatewayError):
    status, code = 429, "rate_limited"
    category = "rate_limit"


class NoRealKey(GatewayError):
    status, code = 503, "no_real_key"
    category = "unavailable"


class NotRecording(GatewayError):
    status, code = 503, "not_recording"
    category = "unavailable"


class UpstreamUnreachable(GatewayError):
    status, code = 502, "upstream_unreachable"
    category = "unavailable"


class AnswerWithheld(UpstreamUnreachable):
    code = "answer_withheld"


class UpstreamTimeout(GatewayError):
    status, code = 504, "upstream_timeout"
    category = "timeout"


class GatewayFault(GatewayError):
    pass
