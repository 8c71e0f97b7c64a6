"""Puts a real key into a request's *bytes* as mitmproxy serialises them, and nowhere else.

A flow only ever holds a placeholder (``[tollkeeper:redacted] openai/main ~<nonce>``),
so every view of it (other addons, mitmweb's REST answers and websocket, ``-w`` files,
HAR, the dumper at any ``flow_detail``) holds the placeholder. mitmproxy turns a request
head into bytes at exactly three call sites of its HTTP layers:

- ``_http1.Http1Client.send``: ``http1.assemble_request_head(request)``;
- ``_http2.Http2Client._handle_event2``: ``format_h2_request_headers(context, event)``;
- ``_http3.Http3Connection._handle_event``: the same function, imported by name.

``WirePatch`` rebinds those names *in those modules only* (not the functions in their
home modules, so mitmweb's "export raw request" and other users keep the placeholder)
to wrappers that swap a registered placeholder for its real header value in the
serialised result. The real value never enters a ``Request`` object; in HTTP/2 and
HTTP/3 it is sent as a never-indexed header, so HPACK/QPACK tables do not keep it either.

This reaches into mitmproxy internals on purpose: ``install`` raises ``WireUnavailable``
when they are not as expected, and a request that somehow missed the wrappers carries
only the placeholder, which the provider refuses (fail closed). Tests drive real
mitmproxy client layers through the patched names, so a change in mitmproxy fails them.
"""

from __future__ import annotations

import re
import secrets
import types
from collections.abc import Callable, Generator
from typing import Any

from hpack import NeverIndexedHeaderTuple

from addon.flowstate import REDACTED

_NONCE = re.compile(rb"~([0-9a-f]{32})(?:\r\n|$)")
_MARK = REDACTED.encode()


class WireUnavailable(RuntimeError):
    """mitmproxy's serialisation call sites are not where this module expects them."""


class Secrets:
    """Placeholders of requests in flight and the header values they stand for."""

    def __init__(self) -> None:
        self._by_nonce: dict[bytes, tuple[bytes, bytes, bytes]] = {}

    def register(self, header: str, marker: str, real_value: str) -> str:
        """Register ``real_value`` for ``header``; returns the placeholder to put in the flow."""
        nonce = secrets.token_hex(16)
        placeholder = f"{marker} ~{nonce}"
        self._by_nonce[nonce.encode()] = (
            header.lower().encode(),
            placeholder.encode(),
            real_value.encode(),
        )
        return placeholder

    def forget(self, placeholder: str | None) -> None:
        if placeholder:
            match = _NONCE.search(placeholder.encode())
            if match:
                self._by_nonce.pop(match.group(1), None)

    def __len__(self) -> int:
        return len(self._by_nonce)

    def _lookup(self, value: bytes) -> tuple[bytes, bytes, bytes] | None:
        match = _NONCE.search(value)
        return self._by_nonce.get(match.group(1)) if match else None

    def fill_head(self, head: bytes) -> bytes:
        """An HTTP/1 request head with registered placeholders replaced."""
        if _MARK not in head:
            return head
        lines = head.split(b"\r\n")
        for i, line in enumerate(lines[1:], start=1):
            name, sep, value = line.partition(b": ")
            entry = self._lookup(value) if sep and _MARK in value else None
            if entry is not None and name.lower() == entry[0] and value == entry[1]:
                lines[i] = name + b": " + entry[2]
        return b"\r\n".join(lines)

    def fill_fields(self, fields: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """HTTP/2 or HTTP/3 header fields with registered placeholders replaced."""
        out: list[tuple[bytes, bytes]] = []
        for name, value in fields:
            entry = self._lookup(value) if _MARK in value else None
            if entry is not None and name.lower() == entry[0] and value == entry[1]:
                out.append(NeverIndexedHeaderTuple(name, entry[2]))
            else:
                out.append((name, value))
        return out


class _Http1Namespace:
    """Stands in for ``mitmproxy.net.http.http1`` inside mitmproxy's HTTP/1 layer only."""

    def __init__(self, real: types.ModuleType, fill: Callable[[bytes], bytes]) -> None:
        self._real, self._fill = real, fill

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def assemble_request_head(self, request: Any) -> bytes:
        return self._fill(self._real.assemble_request_head(request))


class WirePatch:
    """Installs the wrappers for one ``Secrets``; ``uninstall`` puts mitmproxy back.

    The newest install wins (a reloaded addon replaces its predecessor's wrappers);
    ``uninstall`` restores mitmproxy's own functions only where its wrappers still sit.
    """

    def __init__(self, table: Secrets) -> None:
        self.table = table
        self._mine: list[tuple[Any, str, Any]] = []

    def install(self) -> None:
        if self._mine:
            return
        modules = _modules()
        http1_mod = modules["http1"]
        real_http1 = _original(getattr(http1_mod, "http1", None))
        if not callable(getattr(real_http1, "assemble_request_head", None)):
            raise WireUnavailable("mitmproxy's HTTP/1 layer no longer uses http1")
        targets: list[tuple[Any, str, Any]] = [
            (http1_mod, "http1", _Http1Namespace(real_http1, self.table.fill_head))
        ]
        original = _original(getattr(modules["http2"], "format_h2_request_headers", None))
        if not callable(original):
            raise WireUnavailable("mitmproxy's HTTP/2 layer lost format_h2_request_headers")
        if _original(getattr(modules["http3"], "format_h2_request_headers", None)) is not original:
            raise WireUnavailable("mitmproxy's HTTP/3 layer serialises requests differently")
        wrapper = self._h2_wrapper(original)
        for key in ("http2", "http3"):
            targets.append((modules[key], "format_h2_request_headers", wrapper))
        for mod, name, replacement in targets:
            setattr(mod, name, replacement)
            self._mine.append((mod, name, replacement))

    def uninstall(self) -> None:
        while self._mine:
            mod, name, replacement = self._mine.pop()
            if getattr(mod, name, None) is replacement:
                setattr(mod, name, _original(replacement))

    @property
    def installed(self) -> bool:
        return bool(self._mine) and all(getattr(m, n, None) is r for m, n, r in self._mine)

    def _h2_wrapper(self, original: Callable[..., Any]) -> Callable[..., Any]:
        fill = self.table.fill_fields

        def format_h2_request_headers(
            context: Any, event: Any
        ) -> Generator[Any, Any, list[tuple[bytes, bytes]]]:
            fields = yield from original(context, event)
            return fill(fields)

        format_h2_request_headers._tollkeeper_original = original  # type: ignore[attr-defined]
        return format_h2_request_headers


def _original(obj: Any) -> Any:
    """mitmproxy's own object behind one of our wrappers (or ``obj`` itself)."""
    if isinstance(obj, _Http1Namespace):
        return obj._real
    return getattr(obj, "_tollkeeper_original", obj)


def _modules() -> dict[str, types.ModuleType]:
    try:
        from mitmproxy.proxy.layers.http import _http1, _http2, _http3
    except ImportError as e:  # pragma: no cover - depends on the mitmproxy release
        raise WireUnavailable(f"mitmproxy's HTTP layers moved: {e}") from e
    return {"http1": _http1, "http2": _http2, "http3": _http3}
