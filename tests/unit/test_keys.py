"""Virtual keys: format, parse, hash, and telling a provider key from a virtual one."""

from __future__ import annotations

import hashlib
import re
import string

import pytest

from addon import keys

KEY_ID = "abc123xyz0"
SECRET = "0123456789abcdef" * 2 + "01234567"  # 40 hex digits
FULL = f"tk-{KEY_ID}-{SECRET}"


def test_format_then_parse_gives_back_the_key_id() -> None:
    assert keys.format_key(KEY_ID, SECRET) == FULL
    assert keys.parse_key(FULL) == KEY_ID


def test_generated_keys_parse_and_have_the_documented_shape() -> None:
    for _ in range(50):
        key_id, secret = keys.new_key_id(), keys.new_secret()
        full = keys.format_key(key_id, secret)
        assert re.fullmatch(r"tk-[a-z0-9]{10}-[0-9a-f]{40}", full)
        assert keys.parse_key(full) == key_id


def test_secret_carries_at_least_128_random_bits() -> None:
    secrets_seen = {keys.new_secret() for _ in range(500)}
    assert len(secrets_seen) == 500
    assert all(len(s) * 4 >= 128 for s in secrets_seen)  # hex: 4 bits per digit
    # every hex digit shows up at every position often enough to rule out a constant part
    for position in range(40):
        assert len({s[position] for s in secrets_seen}) >= 12


def test_key_ids_use_the_whole_alphabet_and_do_not_repeat() -> None:
    ids = [keys.new_key_id() for _ in range(500)]
    assert len(set(ids)) == 500
    used = set("".join(ids))
    assert used <= set(string.ascii_lowercase + string.digits)
    assert len(used) >= 30


def test_surrounding_whitespace_is_ignored_when_parsing_and_hashing() -> None:
    assert keys.parse_key(f"  {FULL}\n") == KEY_ID
    assert keys.hash_key(f" {FULL}\n") == keys.hash_key(FULL)


@pytest.mark.parametrize(
    "presented",
    [
        "",
        "tk-",
        f"tk-{KEY_ID}",
        f"tk-{KEY_ID}-",
        f"tk-{KEY_ID}-{SECRET[:-1]}",  # secret one digit short
        f"tk-{KEY_ID}-{SECRET}0",  # secret one digit long
        f"tk-{KEY_ID[:-1]}-{SECRET}",  # id one character short
        f"tk-{KEY_ID}x-{SECRET}",  # id one character long
        f"tk-{KEY_ID.upper()}-{SECRET}",  # id is lower case only
        f"tk-{KEY_ID}-{SECRET.upper()}",  # secret is lower-case hex only
        f"tk-{KEY_ID}-{SECRET[:-1]}g",  # not hex
        f"TK-{KEY_ID}-{SECRET}",
        f"sk-{KEY_ID}-{SECRET}",
        f"tk_{KEY_ID}_{SECRET}",
        f"tk-{KEY_ID}-{SECRET}-extra",
        f"xtk-{KEY_ID}-{SECRET}",
        f"tk-{KEY_ID}-{SECRET[:20]} {SECRET[20:]}",
        f"Bearer {FULL}",
        f"tk-{KEY_ID}-{SECRET}\x00",
    ],
)
def test_malformed_keys_are_rejected(presented: str) -> None:
    with pytest.raises(keys.MalformedKey):
        keys.parse_key(presented)


def test_malformed_key_is_a_value_error() -> None:
    assert issubclass(keys.MalformedKey, ValueError)


def test_hash_is_sha256_of_the_whole_key_and_never_contains_the_secret() -> None:
    digest = keys.hash_key(FULL)
    assert digest == hashlib.sha256(FULL.encode()).hexdigest()
    assert SECRET not in digest and len(digest) == 64


def test_matches_only_the_key_that_was_hashed() -> None:
    stored = keys.hash_key(FULL)
    assert keys.matches(FULL, stored)
    other_secret = keys.format_key(KEY_ID, "f" * 40)
    assert not keys.matches(other_secret, stored)
    other_id = keys.format_key("zzzzzzzzzz", SECRET)
    assert not keys.matches(other_id, stored)


@pytest.mark.parametrize(
    "presented",
    [
        "sk-proj-AbCdEf0123456789",  # OpenAI project key
        "sk-svcacct-AbCdEf0123456789",
        "sk-ant-api03-AbCdEf0123456789",  # Anthropic
        "AIzaSyA-AbCdEf0123456789",  # Google
    ],
)
def test_provider_keys_are_recognised(presented: str) -> None:
    assert keys.looks_like_provider_key(presented)


@pytest.mark.parametrize("presented", [FULL, "", "random-garbage", "Bearer sk-x", "aiza-lower"])
def test_other_strings_are_not_taken_for_provider_keys(presented: str) -> None:
    assert not keys.looks_like_provider_key(presented)
