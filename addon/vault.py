"""Encryption of real provider keys at rest (Fernet, from the ``cryptography`` package).

The master key comes from ``TOLLKEEPER_MASTER_KEY`` or, failing that, from a 0600 file in
the home directory that is created on first use. A real key may instead be stored as a
reference to an environment variable, read when it is used.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


class VaultError(Exception):
    """A real key cannot be decrypted or resolved (wrong master key, missing env var)."""


def load_master_key(path: Path, *, create: bool = True) -> bytes:
    env = os.environ.get("TOLLKEEPER_MASTER_KEY")
    if env:
        return env.strip().encode()
    if path.exists():
        return path.read_bytes().strip()
    if not create:
        raise VaultError(f"no master key: set TOLLKEEPER_MASTER_KEY or create {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    # write a complete file under a private name, then link it into place: a process
    # starting at the same moment either wins the link or reads a complete key
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(key + b"\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return path.read_bytes().strip()
    finally:
        tmp.unlink(missing_ok=True)
    return key


class Vault:
    def __init__(self, master_key: bytes) -> None:
        try:
            self._fernet = Fernet(master_key)
        except (ValueError, TypeError) as e:
            raise VaultError("master key is not a valid Fernet key") from e
        self._plain: dict[str, str] = {}  # ciphertext -> secret, in memory only

    def encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as e:
            raise VaultError("real key cannot be decrypted with this master key") from e

    def resolve(self, *, ciphertext: str | None, env_ref: str | None) -> str:
        if env_ref:
            value = os.environ.get(env_ref)
            if not value:
                raise VaultError(f"environment variable {env_ref} is not set")
            return value
        if ciphertext:
            secret = self._plain.get(ciphertext)
            if secret is None:
                secret = self._plain[ciphertext] = self.decrypt(ciphertext)
            return secret
        raise VaultError("real key has neither ciphertext nor env reference")


def last4(secret: str) -> str:
    return secret[-4:] if len(secret) >= 8 else "****"


def unreadable(vault: Vault, keys: Iterable[tuple[str, str | None]]) -> list[str]:
    """The names of the (name, ciphertext) pairs this vault cannot decrypt."""
    bad = []
    for name, ciphertext in keys:
        if ciphertext is None:
            continue
        try:
            vault.decrypt(ciphertext)
        except VaultError:
            bad.append(name)
    return bad
