"""The dashboard for one request of the admin listener: query string in, page or JSON out.

``GET /dashboard?since=&until=&project=&key=&bucket=day|hour`` (dates as ``tollkeeper usage``
takes them: a plain ``--until`` date includes that day) is the page;
``GET /dashboard.json`` with the same parameters is its data.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from urllib.parse import parse_qs

from sqlalchemy.engine import Engine
from sqlmodel import Session

from addon.dashboard.data import RealKeyState, Scope, collect
from addon.dashboard.page import render
from addon.moments import parse_moment

MAX_TEXT = 200  # a project name or key id longer than any stored one matches nothing anyway


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = [v.strip() for v in query.get(name, []) if v.strip()]
    if not values:
        return None
    if len(values[-1]) > MAX_TEXT:
        raise ValueError(f"{name} is too long")
    return values[-1]


def scope_from_query(text: str) -> Scope:
    """The scope a query string asks for; raises ValueError (message fit for the user)."""
    query = parse_qs(text, keep_blank_values=False, max_num_fields=20)
    since, until = _one(query, "since"), _one(query, "until")
    bucket = _one(query, "bucket") or "day"
    if bucket not in ("day", "hour"):
        raise ValueError("bucket must be day or hour")
    scope = Scope(
        since=parse_moment(since) if since else None,
        until=parse_moment(until, end_of_day=True) if until else None,
        project=_one(query, "project"),
        key_id=_one(query, "key"),
        bucket=bucket,
    )
    if scope.since and scope.until and scope.since >= scope.until:
        raise ValueError("since must be before until")
    return scope


class Dashboard:
    """Builds the page from the gateway's database; called from the admin listener's threads,
    each with a short session of its own, never on the proxy's event loop."""

    def __init__(
        self, engine: Engine, live_keys: Callable[[], Iterable[RealKeyState]] | None = None
    ) -> None:
        self.engine, self.live_keys = engine, live_keys

    def data(self, query: str) -> dict[str, object]:
        scope = scope_from_query(query)
        live = self.live_keys() if self.live_keys is not None else None
        with Session(self.engine) as session:
            return collect(session=session, scope=scope, now=datetime.now(UTC), live_keys=live)

    def page(self, query: str) -> bytes:
        return render(self.data(query), live=True).encode()

    def json(self, query: str) -> bytes:
        return json.dumps(self.data(query)).encode()
