"""Real-key encryption at rest, env references, and where the master key comes from."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from addon import vault
from addon.vault import Vault, VaultError, last4, load_master_key, unreadable

REAL = "sk-proj-REAL-0123456789abcdef"


@pytest.fixture
def no_master_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOLLKEEPER_MASTER_KEY", raising=False)


def test_encrypt_then_decrypt_round_trips() -> None:
    v = Vault(Fernet.generate_key())
    token = v.encrypt(REAL)
    assert REAL not in token
    assert v.decrypt(token) == REAL


def test_each_encryption_is_different() -> None:
    v = Vault(Fernet.generate_key())
    assert v.encrypt(REAL) != v.encrypt(REAL)


def test_wrong_master_key_raises_vault_error_without_the_secret() -> None:
    token = Vault(Fernet.generate_key()).encrypt(REAL)
    with pytest.raises(VaultError) as exc_info:
        Vault(Fernet.generate_key()).decrypt(token)
    assert REAL not in str(exc_info.value)


@pytest.mark.parametrize("token", ["", "not-a-token", "gAAAAA", "ü" * 10])
def test_garbage_ciphertext_raises_vault_error(token: str) -> None:
    with pytest.raises(VaultError):
        Vault(Fernet.generate_key()).decrypt(token)


def test_tampered_ciphertext_raises_vault_error() -> None:
    v = Vault(Fernet.generate_key())
    token = v.encrypt(REAL)
    flipped = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
    with pytest.raises(VaultError):
        v.decrypt(flipped)


@pytest.mark.parametrize("bad", [b"", b"short", b"x" * 44, "not base64 at all!"])
def test_invalid_master_key_raises_vault_error(bad: bytes | str) -> None:
    with pytest.raises(VaultError):
        Vault(bad)  # type: ignore[arg-type]


def test_resolve_reads_an_env_reference_when_used(monkeypatch: pytest.MonkeyPatch) -> None:
    v = Vault(Fernet.generate_key())
    monkeypatch.setenv("TK_TEST_REAL_KEY", REAL)
    assert v.resolve(ciphertext=None, env_ref="TK_TEST_REAL_KEY") == REAL
    monkeypatch.setenv("TK_TEST_REAL_KEY", "sk-rotated")
    assert v.resolve(ciphertext=None, env_ref="TK_TEST_REAL_KEY") == "sk-rotated"


@pytest.mark.parametrize("value", [None, ""])
def test_missing_or_empty_env_reference_raises_vault_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("TK_TEST_REAL_KEY", raising=False)
    else:
        monkeypatch.setenv("TK_TEST_REAL_KEY", value)
    with pytest.raises(VaultError, match="TK_TEST_REAL_KEY"):
        Vault(Fernet.generate_key()).resolve(ciphertext=None, env_ref="TK_TEST_REAL_KEY")


def test_resolve_decrypts_ciphertext() -> None:
    v = Vault(Fernet.generate_key())
    assert v.resolve(ciphertext=v.encrypt(REAL), env_ref=None) == REAL


def test_resolve_with_nothing_stored_raises_vault_error() -> None:
    with pytest.raises(VaultError):
        Vault(Fernet.generate_key()).resolve(ciphertext=None, env_ref=None)


def test_master_key_file_is_created_with_mode_0600(tmp_path: Path, no_master_env: None) -> None:
    path = tmp_path / "home" / "master.key"  # the home directory does not exist yet
    key = load_master_key(path)
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().strip() == key
    Vault(key)  # a valid Fernet key


def test_master_key_file_is_reused(tmp_path: Path, no_master_env: None) -> None:
    path = tmp_path / "master.key"
    first = load_master_key(path)
    token = Vault(first).encrypt(REAL)
    second = load_master_key(path)
    assert second == first
    assert Vault(second).decrypt(token) == REAL


def test_master_key_file_is_not_created_when_create_is_false(
    tmp_path: Path, no_master_env: None
) -> None:
    path = tmp_path / "master.key"
    with pytest.raises(VaultError, match="TOLLKEEPER_MASTER_KEY"):
        load_master_key(path, create=False)
    assert not path.exists()


def test_environment_master_key_wins_over_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "master.key"
    path.write_bytes(Fernet.generate_key() + b"\n")
    env_key = Fernet.generate_key()
    monkeypatch.setenv("TOLLKEEPER_MASTER_KEY", f"  {env_key.decode()}\n")
    assert load_master_key(path) == env_key


def test_environment_master_key_means_no_file_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "master.key"
    monkeypatch.setenv("TOLLKEEPER_MASTER_KEY", Fernet.generate_key().decode())
    load_master_key(path)
    assert not path.exists()


def test_invalid_environment_master_key_fails_when_the_vault_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOLLKEEPER_MASTER_KEY", "not-a-fernet-key")
    with pytest.raises(VaultError):
        Vault(load_master_key(tmp_path / "master.key"))


def test_master_key_created_concurrently_by_another_process_is_used(
    tmp_path: Path, no_master_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "master.key"
    theirs = Fernet.generate_key()
    real_link = os.link

    def other_process_wins(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        # between writing our key and putting it in place, another process put its own
        if Path(dst) == path and not path.exists():
            path.write_bytes(theirs + b"\n")
        real_link(src, dst)

    monkeypatch.setattr(vault.os, "link", other_process_wins)
    assert load_master_key(path) == theirs
    assert [p.name for p in tmp_path.iterdir()] == ["master.key"]  # no temp file left


def test_processes_starting_together_agree_on_one_master_key(
    tmp_path: Path, no_master_env: None
) -> None:
    import subprocess
    import sys

    path = tmp_path / "home" / "master.key"
    code = (
        "import sys, time; from pathlib import Path; from addon.vault import load_master_key;"
        f"time.sleep(max(0, {time.time() + 1.0} - time.time()));"
        "print(load_master_key(Path(sys.argv[1])).decode())"
    )
    env = {k: v for k, v in os.environ.items() if k != "TOLLKEEPER_MASTER_KEY"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True, env=env
        )
        for _ in range(6)
    ]
    keys = {p.communicate(timeout=30)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert keys == {path.read_text().strip()}


@pytest.mark.parametrize(
    ("secret", "shown"),
    [("sk-proj-abcdefgh1234", "1234"), ("12345678", "5678"), ("1234567", "****"), ("", "****")],
)
def test_last4_shows_four_characters_of_long_secrets_only(secret: str, shown: str) -> None:
    assert last4(secret) == shown


def test_unreadable_names_the_keys_another_master_key_encrypted() -> None:
    mine, other = Vault(Fernet.generate_key()), Vault(Fernet.generate_key())
    keys = [("openai/a", mine.encrypt("sk-1")), ("openai/b", other.encrypt("sk-2"))]
    assert unreadable(mine, [*keys, ("groq/env", None), ("x/junk", "not-a-token")]) == [
        "openai/b",
        "x/junk",
    ]
