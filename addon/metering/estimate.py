"""Offline token estimates with tiktoken, for when a provider reports no usage.

The ``cl100k_base`` and ``o200k_base`` BPE files ship in ``encodings/`` (named, as in tiktoken's
cache, by the sha1 of their download URL) and are checked against tiktoken's sha256 before use.
Loading never touches the network, tiktoken's cache directory or ``os.environ``: the files are
read here and the ``tiktoken.Encoding`` is built directly. Encodings are loaded once per process,
on first use (about a second for o200k_base), so call this from a worker thread, not the event
loop.

Estimates are approximate: chat prompts are counted with their framing and tool definitions
(``chat_tokens.py``), other prompts as their text; tiktoken runs low for Claude (typically
15-50%) and Gemini, whose tokenizers differ.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import tiktoken
from tiktoken.model import encoding_name_for_model
from tiktoken_ext.openai_public import ENDOFPROMPT, ENDOFTEXT, FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX

from addon.metering.chat_tokens import chat_format, chat_prompt_tokens
from addon.metering.prompt_text import openai_prompt_text, pretokenized_count
from addon.metering.responses_tokens import responses_prompt_tokens

__all__ = ["count_tokens", "encoding_for_model", "openai_prompt_tokens"]

ENCODINGS_DIR = Path(__file__).with_name("encodings")


@dataclass(frozen=True)
class _Spec:
    file_name: str  # sha1 of tiktoken's download URL (its cache file name)
    sha256: str  # tiktoken_ext.openai_public's expected_hash
    pat_str: str
    special_tokens: dict[str, int]


# pat_str and special tokens as in tiktoken_ext/openai_public.py (tiktoken 0.14.0);
# tests/unit/metering/test_estimate.py checks them against tiktoken's own constructors.
_LOWER = r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]"
_UPPER = r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]"
_CONTRACTION = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
_O200K_PAT = "|".join(
    [
        rf"[^\r\n\p{{L}}\p{{N}}]?{_UPPER}*{_LOWER}+{_CONTRACTION}",
        rf"[^\r\n\p{{L}}\p{{N}}]?{_UPPER}+{_LOWER}*{_CONTRACTION}",
        r"\p{N}{1,3}",
        r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
        r"\s*[\r\n]+",
        r"\s+(?!\S)",
        r"\s+",
    ]
)
_CL100K_PAT = (
    r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+"
    r"| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"
)
SPECS = {
    "cl100k_base": _Spec(
        file_name="9b5ad71b2ce5302211f9c61530b329a4922fc6a4",
        sha256="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        pat_str=_CL100K_PAT,
        special_tokens={
            ENDOFTEXT: 100257,
            FIM_PREFIX: 100258,
            FIM_MIDDLE: 100259,
            FIM_SUFFIX: 100260,
            ENDOFPROMPT: 100276,
        },
    ),
    "o200k_base": _Spec(
        file_name="fb374d419588a4632f3f557e76b4b70aebbca790",
        sha256="446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        pat_str=_O200K_PAT,
        special_tokens={ENDOFTEXT: 199999, ENDOFPROMPT: 200018},
    ),
}

# Families tiktoken may not know yet (new snapshots, provider prefixes) that use o200k_base.
_O200K_FAMILY = re.compile(
    r"^(?:ft:)?(?:gpt-5|gpt-4o|gpt-4\.1|gpt-4\.5|chatgpt-4o|o[134](?![a-z0-9]))"
)

_lock = threading.Lock()
_loaded: dict[str, tiktoken.Encoding] = {}


def load_ranks(path: Path, sha256: str) -> dict[bytes, int]:
    """Read a ``.tiktoken`` BPE file (``base64-token rank`` per line) after checking its hash."""
    contents = path.read_bytes()
    if hashlib.sha256(contents).hexdigest() != sha256:
        raise ValueError(f"{path} does not match its expected sha256 {sha256}")
    ranks: dict[bytes, int] = {}
    for line in contents.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def get_encoding(name: str) -> tiktoken.Encoding:
    """One of the bundled encodings, loaded on first use and cached for the process."""
    with _lock:
        if name not in _loaded:
            spec = SPECS[name]
            _loaded[name] = tiktoken.Encoding(
                name=name,
                pat_str=spec.pat_str,
                mergeable_ranks=load_ranks(ENCODINGS_DIR / spec.file_name, spec.sha256),
                special_tokens=spec.special_tokens,
            )
        return _loaded[name]


def encoding_for_model(model: str | None) -> tuple[tiktoken.Encoding, str, bool]:
    """The encoding for ``model``: ``(encoding, its name, exact)``.

    ``exact`` is True when tiktoken itself maps the model (optionally after dropping a
    ``provider/`` prefix such as ``openai/gpt-4o``) to a bundled encoding. Otherwise we fall
    back, with ``exact=False``: names that look like the gpt-5, gpt-4o, gpt-4.1, gpt-4.5, o1, o3
    or o4 families (and gpt-oss, whose ``o200k_harmony`` only adds special tokens) get
    ``o200k_base``; everything else (``claude-*``, ``gemini-*``, unknown
    names, and models on encodings we do not bundle such as ``p50k_base``) gets
    ``cl100k_base``.
    """
    name = _tiktoken_name(model)
    if name in SPECS:
        return get_encoding(name), name, True
    bare = (model or "").rsplit("/", 1)[-1].strip().lower()
    o200k_like = name == "o200k_harmony" or _O200K_FAMILY.match(bare) is not None
    fallback = "o200k_base" if o200k_like else "cl100k_base"
    return get_encoding(fallback), fallback, False


def _tiktoken_name(model: str | None) -> str | None:
    if not model:
        return None
    for candidate in (model, model.rsplit("/", 1)[-1]):
        try:
            return encoding_name_for_model(candidate)
        except KeyError:
            continue
    return None


def count_tokens(text: str, model: str | None) -> int:
    """Tokens in ``text`` with the encoding for ``model``; special-token text counts as text."""
    encoding, _, _ = encoding_for_model(model)
    return len(encoding.encode_ordinary(text))


def openai_prompt_tokens(api: str, body: object, model: str | None) -> int:
    """Estimated input tokens of a parsed OpenAI-style request body: its text, counted for
    ``model``, plus any inputs the client sent already tokenized (lists of token ids). A Chat
    Completions prompt is counted as the model sees it: each message framed with its role,
    tool definitions rendered, the reply primed (see ``chat_tokens.py``)."""
    if api == "openai.chat" and isinstance(body, Mapping):
        encoding, _, _ = encoding_for_model(model)
        return chat_prompt_tokens(body, encoding.encode_ordinary, chat_format(model))
    if api == "openai.responses" and isinstance(body, Mapping):
        encoding, _, _ = encoding_for_model(model)
        return responses_prompt_tokens(body, encoding.encode_ordinary, chat_format(model))
    return count_tokens(openai_prompt_text(api, body), model) + pretokenized_count(api, body)
