"""A usage draft as one line of JSON, for the journal.

Cheap enough for the event loop: one JSON encoding of plain fields, by one shared encoder.
The request body and the streamed text are only needed for a token estimate, so they are
kept only when the draft may need one (no usage reported, or the exchange ended early) and
are small enough.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import datetime
from typing import Any

from addon.metering.usage import MeterResult, Usage
from addon.records import UsageDraft

ESTIMATE_INPUT_MAX = 256 * 1024  # bytes of request body / streamed text kept for estimates

_PLAIN = tuple(
    f.name
    for f in dataclasses.fields(UsageDraft)
    if f.name not in ("created_at", "result", "request_body")
)
_USAGE = tuple(f.name for f in dataclasses.fields(Usage))  # plain ints: no deep copy needed
# one encoder for every line (json.dumps with options builds a new one per call)
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)


def _may_need_estimate(d: UsageDraft) -> bool:
    r = d.result
    return r is None or r.usage is None or d.aborted or bool(r.error_kind)


def encode_draft(d: UsageDraft) -> str:
    data: dict[str, Any] = {name: getattr(d, name) for name in _PLAIN}
    data["created_at"] = d.created_at.isoformat()
    keep = _may_need_estimate(d)
    if keep and d.request_body and len(d.request_body) <= ESTIMATE_INPUT_MAX:
        data["request_body_b64"] = base64.b64encode(d.request_body).decode("ascii")
    r = d.result
    if r is not None:
        data["result"] = {
            "usage": _usage(r.usage),
            "model": r.model,
            "provider_request_id": r.provider_request_id,
            "error_kind": r.error_kind,
            "estimated": r.estimated,
            "streamed": r.streamed,
            "output_text": r.output_text[:ESTIMATE_INPUT_MAX] if keep else "",
            "extras": r.extras,
        }
    return _ENCODER.encode(data)


def _usage(u: Usage | None) -> dict[str, int] | None:
    return None if u is None else {name: getattr(u, name) for name in _USAGE}


def decode_draft(line: str) -> UsageDraft:
    """The draft of one journal line; ValueError/TypeError/KeyError when it is not one."""
    data: dict[str, Any] = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError("not a journal object")
    body = data.pop("request_body_b64", None)
    result = data.pop("result", None)
    created_at = datetime.fromisoformat(data.pop("created_at"))
    draft = UsageDraft(created_at=created_at, **data)
    if body is not None:
        draft.request_body = base64.b64decode(body)
    if result is not None:
        usage = result.pop("usage", None)
        draft.result = MeterResult(usage=Usage(**usage) if usage is not None else None, **result)
    return draft
