"""Who a request is for and what it is about: the end user and the tags a client names.

A client may send ``x-tollkeeper-user: <id>`` and ``x-tollkeeper-tags: a,b``; both are
gateway headers, never forwarded. An OpenAI-style body may carry its own ``user`` field; it
is read (never changed) and used when the header does not name a user.

Values are bounded and from a safe charset, so a tag can never hold the delimiter of the
stored form (``a,b``) nor anything a report or a CSV would have to escape:

- user: 1-128 of ``A-Z a-z 0-9 . _ - @ : + = /`` (ids, e-mail addresses, base64 hashes);
- tags: at most 10, each 1-64 of ``A-Z a-z 0-9 . _ - :``; blanks around commas and empty
  items are ignored, repeats kept once, in the order sent.

An invalid header is the client's mistake: ``parse_headers`` raises ``ValueError`` and the
gateway answers 400. An invalid body ``user`` is the provider's business (the provider
accepts what it accepts): the request passes unchanged and is attributed to no user.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

USER_HEADER = "x-tollkeeper-user"
TAGS_HEADER = "x-tollkeeper-tags"
HEADERS = (USER_HEADER, TAGS_HEADER)
USER_MAX = 128
TAG_MAX = 64
TAGS_MAX = 10
_USER_RE = re.compile(rf"[A-Za-z0-9._@:+=/-]{{1,{USER_MAX}}}")
_TAG_RE = re.compile(rf"[A-Za-z0-9._:-]{{1,{TAG_MAX}}}")


@dataclass(frozen=True, slots=True)
class Attribution:
    user: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def tags_text(self) -> str:
        """The stored form: the tags joined by commas ("" for none)."""
        return ",".join(self.tags)


def parse_headers(headers: Iterable[tuple[str, str]]) -> Attribution:
    """The attribution a request's headers name; ValueError (a message for the client)
    when a value is malformed. Several tag headers add up; several user headers must agree."""
    users: set[str] = set()
    tags: list[str] = []
    for name, value in headers:
        low = name.lower()
        if low == USER_HEADER:
            users.add(value.strip())
        elif low == TAGS_HEADER:
            tags += [t.strip() for t in value.split(",") if t.strip()]
    if len(users) > 1:
        raise ValueError(f"{USER_HEADER} is given more than once with different values")
    user = users.pop() if users else None
    if user and not _USER_RE.fullmatch(user):  # an empty header names nobody
        raise ValueError(
            f"{USER_HEADER} must be 1-{USER_MAX} characters of A-Z a-z 0-9 . _ - @ : + = /"
        )
    return Attribution(user=user or None, tags=_valid_tags(tags))


def _valid_tags(tags: list[str]) -> tuple[str, ...]:
    unique = tuple(dict.fromkeys(tags))
    if len(unique) > TAGS_MAX:
        raise ValueError(f"{TAGS_HEADER} names more than {TAGS_MAX} tags")
    for tag in unique:
        if not _TAG_RE.fullmatch(tag):
            raise ValueError(
                f"{TAGS_HEADER}: each tag must be 1-{TAG_MAX} characters of A-Z a-z 0-9 . _ - :"
            )
    return unique


def body_user(body: Any) -> str | None:
    """The ``user`` field of a JSON request body when it is a valid user id, else None."""
    if not isinstance(body, dict):
        return None
    user = body.get("user")
    if isinstance(user, str) and _USER_RE.fullmatch(user):
        return user
    return None


def split_tags(text: str | None) -> list[str]:
    """The tags of a stored record."""
    return [t for t in (text or "").split(",") if t]
