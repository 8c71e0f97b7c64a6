"""Virtual keys: generation, parsing and hashing. Pure functions, no I/O.

A virtual key reads ``tk-<id>-<secret>``: ``id`` is 10 characters of ``[a-z0-9]`` (public,
used to list, show and revoke), ``secret`` is 40 hex digits (160 random bits). Only the
SHA-256 of the whole key is stored; with 160 bits of entropy a slow hash adds nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string

PREFIX = "tk-"
_ID_ALPHABET = string.ascii_lowercase + string.digits
_ID_LEN = 10
_SECRET_BYTES = 20
KEY_RE = re.compile(r"^tk-([a-z0-9]{10})-([0-9a-f]{40})$")


class MalformedKey(ValueError):
    """The presented credential is not shaped like a virtual key."""


def new_key_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LEN))


def new_secret() -> str:
    return secrets.token_hex(_SECRET_BYTES)


def format_key(key_id: str, secret: str) -> str:
    return f"{PREFIX}{key_id}-{secret}"


def parse_key(presented: str) -> str:
    """Return the key id of a well-formed virtual key, else raise MalformedKey."""
    m = KEY_RE.match(presented.strip())
    if not m:
        raise MalformedKey("not a tollkeeper virtual key")
    return m.group(1)


def hash_key(full_key: str) -> str:
    return hashlib.sha256(full_key.strip().encode()).hexdigest()


def matches(full_key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_key(full_key), stored_hash)


def looks_like_provider_key(presented: str) -> bool:
    """A real provider key sent where a virtual key belongs (used only for a clearer error)."""
    return presented.startswith(("sk-", "sk-ant-", "AIza"))
