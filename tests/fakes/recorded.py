"""Real provider exchanges recorded by other projects (``../shared/realtraffic/cases``), and
what the gateway must make of them.

A :class:`Case` is one request/response pair (the folder's README gives the format). Its body
can be cut into pieces: :func:`event_cuts` (one SSE event or one JSON-array element per piece;
for a compressed body, the compressed offsets at which each event is complete) or
:func:`random_cuts` (arbitrary offsets). :func:`expected_client_bytes` and
:func:`check_record` say what a client must receive and what the usage record must hold.
"""

from __future__ import annotations

import base64
import json
import random
import zlib
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CASES_DIR = ROOT.parent / "shared" / "realtraffic" / "cases"
SKIP_REASON = f"no recorded provider traffic at {CASES_DIR} (it lives outside the project)"


@dataclass(frozen=True)
class Case:
    id: str
    provider: str
    host: str
    api: str
    stream: bool
    method: str
    path: str
    request_headers: dict[str, str]
    request_body: bytes
    client_asked_usage: bool
    status: int
    response_headers: dict[str, str]
    response_body: bytes  # as recorded: compressed where content-encoding says so
    expected: dict[str, Any]

    @property
    def content_encoding(self) -> str | None:
        return self.response_headers.get("content-encoding")

    @property
    def content_type(self) -> str:
        return self.response_headers.get("content-type", "")

    @property
    def plain_body(self) -> bytes:
        """The response body decompressed."""
        return decompress(self.response_body, self.content_encoding)

    @property
    def is_sse(self) -> bool:
        return "event-stream" in self.content_type


def load_case(path: Path) -> Case:
    doc = json.loads(path.read_text())
    req, resp = doc["request"], doc["response"]
    return Case(
        id=doc["id"],
        provider=doc["provider"],
        host=doc["host"],
        api=doc["api"],
        stream=bool(doc["stream"]),
        method=req["method"],
        path=req["path"],
        request_headers={k.lower(): v for k, v in req["headers"].items()},
        request_body=base64.b64decode(req["body_b64"]),
        client_asked_usage=bool(req.get("client_asked_usage")),
        status=int(resp["status"]),
        response_headers={k.lower(): v for k, v in resp["headers"].items()},
        response_body=base64.b64decode(resp["body_b64"]),
        expected=doc["expected"],
    )


def load_cases() -> list[Case]:
    """Every recorded case, sorted by id; empty when the folder is absent."""
    if not CASES_DIR.is_dir():
        return []
    return [load_case(p) for p in sorted(CASES_DIR.glob("*.json"))]


def decompress(body: bytes, encoding: str | None) -> bytes:
    if encoding in (None, "", "identity"):
        return body
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompress(body, wbits=47)
    if encoding == "deflate":
        return zlib.decompress(body)
    raise ValueError(f"no decoder for {encoding!r} in the replay helpers")


# -- where a body may be cut -------------------------------------------------------------------


def plain_event_ends(body: bytes, sse: bool) -> list[int]:
    """Offsets just past each SSE event (its blank line) or each top-level JSON-array element
    (and its separator), in an uncompressed body."""
    return _sse_ends(body) if sse else _json_array_ends(body)


def _sse_ends(body: bytes) -> list[int]:
    ends, i = [], 0
    while i < len(body):
        found = [(body.find(sep, i), sep) for sep in (b"\r\n\r\n", b"\n\n", b"\r\r")]
        found = [(at, sep) for at, sep in found if at >= 0]
        if not found:
            break
        at, sep = min(found)
        i = at + len(sep)
        ends.append(i)
    return ends


def _json_array_ends(body: bytes) -> list[int]:
    ends, depth, in_string, escaped = [], 0, False, False
    for i, byte in enumerate(body):
        ch = chr(byte)
        if in_string:
            escaped, in_string = (False, True) if escaped else (ch == "\\", ch != '"')
            continue
        if ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth == 1 and ch == "}":
                ends.append(i + 1)
    return ends


def event_cuts(case: Case) -> list[int]:
    """Offsets in the recorded (maybe compressed) body that end one event each."""
    plain_ends = plain_event_ends(case.plain_body, case.is_sse)
    if case.content_encoding in (None, "", "identity"):
        return _inner(plain_ends, len(case.response_body))
    return _inner(_compressed_offsets(case, plain_ends), len(case.response_body))


def _compressed_offsets(case: Case, plain_ends: list[int]) -> list[int]:
    """For each plain offset, the first compressed offset whose bytes decode past it."""
    wbits = 47 if case.content_encoding in ("gzip", "x-gzip") else 15
    decoder = zlib.decompressobj(wbits=wbits)
    out, produced, want = [], 0, iter(plain_ends)
    target = next(want, None)
    for i in range(len(case.response_body)):
        produced += len(decoder.decompress(case.response_body[i : i + 1]))
        while target is not None and produced >= target:
            out.append(i + 1)
            target = next(want, None)
    return out


def random_cuts(size: int, rng: random.Random, pieces: int = 12) -> list[int]:
    """Up to ``pieces - 1`` arbitrary offsets inside ``size`` bytes, some one byte apart."""
    if size < 2:
        return []
    cuts = {rng.randrange(1, size) for _ in range(pieces - 1)}
    cuts |= {c + 1 for c in list(cuts)[:2] if c + 1 < size}
    return sorted(cuts)


def _inner(cuts: list[int], size: int) -> list[int]:
    return sorted({c for c in cuts if 0 < c < size})


def pieces(body: bytes, cuts: list[int]) -> list[bytes]:
    """``body`` cut at ``cuts``; never an empty piece."""
    bounds = [0, *_inner(cuts, len(body)), len(body)]
    return [body[a:b] for a, b in pairwise(bounds) if b > a]


# -- what the gateway must make of a case ------------------------------------------------------

TOKENS = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
)


def expected_client_bytes(case: Case, *, stripped: bool) -> bytes:
    """The recorded body, minus its usage-only chunks (non-null ``usage``, ``choices == []``)
    when the gateway injected ``include_usage`` and so strips them (uncompressed SSE only)."""
    body = case.response_body
    if not stripped or case.content_encoding or not case.is_sse:
        return body
    bounds = [0, *plain_event_ends(body, sse=True)]
    if bounds[-1] < len(body):
        bounds.append(len(body))
    events = [body[a:b] for a, b in pairwise(bounds)]
    return b"".join(e for e in events if not _usage_only(e))


def _usage_only(event: bytes) -> bool:
    for line in event.decode("utf-8", "replace").splitlines():
        if line.startswith("data:"):
            try:
                obj = json.loads(line[5:])
            except ValueError:
                return False
            return (
                isinstance(obj, dict) and obj.get("usage") is not None and obj.get("choices") == []
            )
    return False


def check_record(case: Case, row: dict[str, Any]) -> None:
    """``row`` (a usage record's columns) is what ``case.expected`` says, by its mode."""
    expected, mode = case.expected, case.expected["mode"]
    got = {name: row[name] for name in TOKENS}
    if mode == "exact":
        assert got == {name: expected[name] for name in TOKENS}, f"{case.id}: {expected['how']}"
        assert not row["estimated"], case.id
    elif mode == "estimated":
        assert row["estimated"], case.id
        assert row["input_tokens"] > 0 and row["output_tokens"] > 0, (case.id, got)
    elif mode == "error":
        assert row["status_code"] == case.status and row["error_kind"], (case.id, row)
        assert set(got.values()) == {0} and not row["estimated"], (case.id, row)
    elif mode == "free":
        assert row["cost_picousd"] == 0 and not row["estimated"], (case.id, row)
        assert set(got.values()) == {0}, (case.id, got)
        counted = json.loads(row["extras_json"]).get("counted_input_tokens")
        assert isinstance(counted, int) and counted > 0, (case.id, row["extras_json"])
    else:
        raise AssertionError(f"{case.id}: unknown mode {mode}")
