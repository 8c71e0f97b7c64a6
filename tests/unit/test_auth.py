"""Who is calling: credential extraction per auth style, and the key and model checks."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from mitmproxy.http import Headers

from addon import auth, keys
from addon.errors import InvalidKey, NotAllowed
from addon.keycache import KeyInfo
from addon.providers.registry import PROVIDERS

OPENAI = PROVIDERS["openai"]
ANTHROPIC = PROVIDERS["anthropic"]
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEY_ID = "abc123xyz0"
FULL = keys.format_key(KEY_ID, "0123456789abcdef" * 2 + "01234567")


def info(**changes: object) -> KeyInfo:
    base = KeyInfo(
        id=KEY_ID,
        project="proj",
        secret_hash=keys.hash_key(FULL),
        expires_at=None,
        revoked=False,
        allowed_providers=(),
        allowed_models=(),
        budget_picousd=None,
        budget_period="total",
        rpm=None,
        tpm=None,
        max_parallel=None,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


# --- presented_credential ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"authorization": f"Bearer {FULL}"}, FULL),
        ({"authorization": f"bearer {FULL}"}, FULL),
        ({"authorization": f"BEARER   {FULL}  "}, FULL),
        ({"authorization": f"Basic {FULL}"}, None),
        ({"authorization": FULL}, None),  # no scheme
        ({"authorization": "Bearer "}, None),
        ({"authorization": "Bearer"}, None),
        ({}, None),
        ({"x-api-key": FULL}, None),  # not where OpenAI-style clients send it
        ({"api-key": FULL}, None),
    ],
)
def test_bearer_providers_take_the_key_from_authorization(
    headers: dict[str, str], expected: str | None
) -> None:
    assert auth.presented_credential(OPENAI, headers) == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-api-key": FULL}, FULL),
        ({"x-api-key": f"  {FULL} "}, FULL),
        ({"authorization": f"Bearer {FULL}"}, FULL),  # auth_token= clients
        ({"x-api-key": FULL, "authorization": "Bearer tk-other"}, FULL),  # x-api-key wins
        ({"x-api-key": "", "authorization": f"Bearer {FULL}"}, FULL),
        ({"x-api-key": "   "}, None),
        ({}, None),
    ],
)
def test_anthropic_takes_x_api_key_or_bearer(headers: dict[str, str], expected: str | None) -> None:
    assert auth.presented_credential(ANTHROPIC, headers) == expected


def test_header_names_are_case_insensitive_with_mitmproxy_headers() -> None:
    headers = Headers(Authorization=f"Bearer {FULL}")
    assert auth.presented_credential(OPENAI, headers) == FULL
    assert auth.presented_credential(ANTHROPIC, Headers(**{"X-Api-Key": FULL})) == FULL


# --- key_id_of --------------------------------------------------------------------------


def test_key_id_of_a_well_formed_key() -> None:
    assert auth.key_id_of(FULL) == KEY_ID


@pytest.mark.parametrize("presented", [None, ""])
def test_missing_key_is_invalid(presented: str | None) -> None:
    with pytest.raises(InvalidKey, match="Missing API key") as exc_info:
        auth.key_id_of(presented)
    assert exc_info.value.status == 401


def test_malformed_key_is_invalid() -> None:
    with pytest.raises(InvalidKey, match="not a tollkeeper virtual key"):
        auth.key_id_of("tk-short-123")


@pytest.mark.parametrize(
    "real", ["sk-proj-SECRETSECRET", "sk-ant-api03-SECRETSECRET", "AIzaSECRET"]
)
def test_a_provider_key_gets_a_clear_error_that_does_not_echo_it(real: str) -> None:
    with pytest.raises(InvalidKey, match="provider API key") as exc_info:
        auth.key_id_of(real)
    assert real not in str(exc_info.value)
    assert "SECRET" not in exc_info.value.message


# --- check_key --------------------------------------------------------------------------


def test_live_key_passes_and_is_returned() -> None:
    k = info()
    assert auth.check_key(FULL, k, "openai", NOW) is k


def test_unknown_key_is_invalid() -> None:
    with pytest.raises(InvalidKey, match="unknown"):
        auth.check_key(FULL, None, "openai", NOW)


def test_wrong_secret_for_a_known_id_is_invalid_and_looks_like_unknown() -> None:
    wrong = keys.format_key(KEY_ID, "f" * 40)
    with pytest.raises(InvalidKey) as wrong_secret:
        auth.check_key(wrong, info(), "openai", NOW)
    with pytest.raises(InvalidKey) as unknown:
        auth.check_key(wrong, None, "openai", NOW)
    assert wrong_secret.value.message == unknown.value.message  # no oracle for valid ids


def test_revoked_key_is_invalid() -> None:
    with pytest.raises(InvalidKey, match="revoked"):
        auth.check_key(FULL, info(revoked=True), "openai", NOW)


def test_wrong_secret_of_a_revoked_key_does_not_reveal_the_revocation() -> None:
    wrong = keys.format_key(KEY_ID, "f" * 40)
    with pytest.raises(InvalidKey, match="unknown"):
        auth.check_key(wrong, info(revoked=True), "openai", NOW)


@pytest.mark.parametrize("expires_at", [NOW, NOW - timedelta(seconds=1), NOW - timedelta(days=9)])
def test_expired_key_is_invalid(expires_at: datetime) -> None:
    with pytest.raises(InvalidKey, match="expired"):
        auth.check_key(FULL, info(expires_at=expires_at), "openai", NOW)


def test_key_expiring_later_is_valid() -> None:
    k = info(expires_at=NOW + timedelta(seconds=1))
    assert auth.check_key(FULL, k, "openai", NOW) is k


def test_provider_not_allowed_is_forbidden() -> None:
    k = info(allowed_providers=("anthropic",))
    with pytest.raises(NotAllowed, match="openai") as exc_info:
        auth.check_key(FULL, k, "openai", NOW)
    assert exc_info.value.status == 403
    assert auth.check_key(FULL, k, "anthropic", NOW) is k


def test_revocation_is_reported_before_a_provider_restriction() -> None:
    k = info(revoked=True, allowed_providers=("anthropic",))
    with pytest.raises(InvalidKey):
        auth.check_key(FULL, k, "openai", NOW)


# --- check_model ------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["gpt-4o-mini", None, "anything"])
def test_no_model_patterns_allows_every_model(model: str | None) -> None:
    auth.check_model(info(), model)


@pytest.mark.parametrize(
    "model", ["gpt-4o-mini", "gpt-4o", "gpt-4o-2024-08-06", "claude-haiku-4-5", "o3"]
)
def test_model_matching_a_glob_is_allowed(model: str) -> None:
    auth.check_model(info(allowed_models=("gpt-4o*", "claude-*-4-5", "o?")), model)


@pytest.mark.parametrize(
    "model", ["gpt-4.1", "GPT-4O-MINI", "claude-opus-4-1", "o33", "xgpt-4o", None, ""]
)
def test_model_matching_no_glob_is_forbidden(model: str | None) -> None:
    with pytest.raises(NotAllowed) as exc_info:
        auth.check_model(info(allowed_models=("gpt-4o*", "claude-*-4-5", "o?")), model)
    assert exc_info.value.status == 403


def test_forbidden_model_error_names_the_model() -> None:
    with pytest.raises(NotAllowed, match=r"gpt-4\.1"):
        auth.check_model(info(allowed_models=("gpt-4o*",)), "gpt-4.1")
    with pytest.raises(NotAllowed, match=r"\(none\)"):
        auth.check_model(info(allowed_models=("gpt-4o*",)), None)


def test_gemini_key_from_header_or_query_and_azure_from_api_key() -> None:
    from addon.providers.registry import PROVIDERS

    gemini, azure = PROVIDERS["gemini"], PROVIDERS["azure"]
    assert auth.presented_credential(gemini, {"x-goog-api-key": "tk-a"}) == "tk-a"
    assert auth.presented_credential(gemini, {}, {"key": "tk-q", "alt": "sse"}) == "tk-q"
    assert auth.presented_credential(gemini, {"x-goog-api-key": "tk-h"}, {"key": "tk-q"}) == "tk-h"
    assert auth.presented_credential(gemini, {}, {"alt": "sse"}) is None
    assert auth.presented_credential(azure, {"api-key": "tk-z"}) == "tk-z"
    assert auth.presented_credential(azure, {"authorization": "Bearer tk-b"}) == "tk-b"
    assert gemini.auth.real_header("REAL") == ("x-goog-api-key", "REAL")
    assert azure.auth.real_header("REAL") == ("api-key", "REAL")


VKEY = "tk-abcdefghij-" + "0" * 40


def test_every_auth_header_and_any_header_carrying_a_virtual_key_is_dropped():
    headers = [
        ("Authorization", f"Bearer {VKEY}"),
        ("x-goog-api-key", "x"),
        ("api-key", "y"),
        ("X-Custom", f"token={VKEY}"),
        ("OpenAI-Organization", "org"),
        ("content-type", "application/json"),
    ]
    assert auth.credential_headers(OPENAI, headers) == [
        "api-key",
        "authorization",
        "openai-organization",
        "x-custom",
        "x-goog-api-key",
    ]


def test_query_credentials_are_dropped_for_every_provider():
    query = [
        ("key", VKEY),
        ("API_KEY", "z"),
        ("q", VKEY),
        ("k2", "sk-proj-abc"),
        ("api-version", "2024-10-21"),
    ]
    assert auth.credential_params(query) == ["API_KEY", "k2", "key", "q"]
