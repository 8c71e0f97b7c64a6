"""Offline tiktoken: bundled encodings, model fallback, and proof that no network is used."""

from __future__ import annotations

import hashlib
import inspect
import os
import socket
import threading
from pathlib import Path

import pytest
import tiktoken
import tiktoken.load
import tiktoken_ext.openai_public as openai_public

from addon.metering import estimate
from addon.metering.estimate import (
    count_tokens,
    encoding_for_model,
    get_encoding,
    load_ranks,
)
from addon.providers.wire import estimate_prompt_tokens

URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Make every way tiktoken could fetch or cache a file fail, and start with no encodings."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network or tiktoken download attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(tiktoken.load, "read_file", refuse)
    monkeypatch.setattr(tiktoken.load, "read_file_cached", refuse)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(estimate, "_loaded", {})
    return tmp_path


@pytest.mark.parametrize(
    ("name", "ids"), [("cl100k_base", [15339, 1917]), ("o200k_base", [24912, 2375])]
)
def test_hello_world_loads_offline_without_touching_env_or_cache(
    no_network: Path, name: str, ids: list[int]
) -> None:
    environ_before = dict(os.environ)
    encoding = get_encoding(name)
    assert encoding.encode("hello world") == ids
    assert encoding.name == name
    assert dict(os.environ) == environ_before
    assert list(no_network.iterdir()) == []  # nothing written to tiktoken's cache dir


def test_vocabulary_sizes_match_tiktoken() -> None:
    assert get_encoding("cl100k_base").n_vocab == 100277
    assert get_encoding("o200k_base").n_vocab == 200019


@pytest.mark.parametrize("name", sorted(estimate.SPECS))
def test_bundled_files_are_the_ones_tiktoken_expects(name: str) -> None:
    spec = estimate.SPECS[name]
    source = inspect.getsource(getattr(openai_public, name))
    assert spec.sha256 in source  # tiktoken's expected_hash
    assert URL.format(name) in source
    assert (
        hashlib.sha1(URL.format(name).encode(), usedforsecurity=False).hexdigest() == spec.file_name
    )
    data = (estimate.ENCODINGS_DIR / spec.file_name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == spec.sha256


@pytest.mark.parametrize("name", sorted(estimate.SPECS))
def test_encoding_matches_tiktokens_own_constructor(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = estimate.SPECS[name]
    path = estimate.ENCODINGS_DIR / spec.file_name
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # tiktoken reads the local path directly
    ranks = tiktoken.load.load_tiktoken_bpe(str(path), expected_hash=spec.sha256)
    assert load_ranks(path, spec.sha256) == ranks
    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", lambda *a, **k: ranks)
    constructor = getattr(openai_public, name)()
    assert constructor["pat_str"] == spec.pat_str
    assert constructor["special_tokens"] == spec.special_tokens


def test_a_tampered_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(b"aGVsbG8= 0\n")
    with pytest.raises(ValueError, match="sha256"):
        load_ranks(bad, estimate.SPECS["cl100k_base"].sha256)


@pytest.mark.parametrize(
    ("model", "name"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("gpt-5-mini", "o200k_base"),
        ("o3", "o200k_base"),
        ("openai/gpt-4.1", "o200k_base"),  # a provider prefix is dropped
        ("azure/gpt-4o", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("text-embedding-3-small", "cl100k_base"),
    ],
)
def test_models_tiktoken_knows_are_exact(model: str, name: str) -> None:
    encoding, encoding_name, exact = encoding_for_model(model)
    assert (encoding_name, exact, encoding.name) == (name, True, name)


@pytest.mark.parametrize(
    ("model", "name"),
    [
        ("claude-sonnet-4-5-20250929", "cl100k_base"),
        ("gemini-2.5-flash", "cl100k_base"),
        ("llama-3.3-70b-versatile", "cl100k_base"),
        ("codex-mini-latest", "cl100k_base"),
        ("text-davinci-003", "cl100k_base"),  # p50k_base: not bundled
        ("o1x-preview", "cl100k_base"),
        (None, "cl100k_base"),
        ("", "cl100k_base"),
        ("GPT-4o-Mini", "o200k_base"),
        ("o4", "o200k_base"),
        ("gpt-oss-120b", "o200k_base"),  # o200k_harmony = o200k_base + special tokens
    ],
)
def test_unknown_models_fall_back_and_say_so(model: str | None, name: str) -> None:
    encoding, encoding_name, exact = encoding_for_model(model)
    assert (encoding_name, exact, encoding.name) == (name, False, name)


def test_count_tokens() -> None:
    assert count_tokens("hello world", "gpt-4") == 2
    assert count_tokens("hello world", "gpt-4o") == 2
    assert count_tokens("", "gpt-4o") == 0
    assert count_tokens("<|endoftext|>", "gpt-4o") > 1  # special-token text counts as text
    assert count_tokens(" ".join(["hello world"] * 100), "claude-haiku-4-5") == 200


def test_estimate_prompt_tokens_adds_pretokenized_inputs() -> None:
    body = {"model": "text-embedding-3-small", "input": [[1, 2, 3], [4, 5]]}
    assert estimate_prompt_tokens("openai.embeddings", body, "text-embedding-3-small") == 5
    chat = {"messages": [{"role": "user", "content": "hello world"}]}
    # 2 text tokens, 3 framing + 1 role, 3 to prime the reply (chat_tokens.py)
    assert estimate_prompt_tokens("openai.chat", chat, "gpt-4o") == 9


def test_concurrent_first_loads_build_one_encoding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(estimate, "_loaded", {})
    got: list[tiktoken.Encoding] = []
    threads = [threading.Thread(target=lambda: got.append(get_encoding("cl100k_base")))
               for _ in range(4)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 4
    assert all(encoding is got[0] for encoding in got)
