"""A deliberately hostile HTTP/1.1 upstream for tests: each answer is raw bytes the test
chooses (echoed keys, bombs, endless streams), sent in the pieces the test gives.

    with HostileUpstream(answer) as up:      # answer(Seen) -> list of byte pieces
        ... point a real key's --base-url at up.base_url ...
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from integration.conftest import OPENAI_REAL, Stack, build_stack
from integration.harness import free_port, wait_for


@dataclass(frozen=True)
class Seen:
    head: bytes
    body: bytes

    def header(self, name: str) -> str | None:
        for line in self.head.decode("latin-1").split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


Answer = Callable[[Seen], Iterable[bytes]]


class HostileUpstream:
    def __init__(self, answer: Answer, *, close_after_answer: bool = False) -> None:
        self.answer = answer
        self.close_after_answer = close_after_answer  # a truncated answer then ends
        self.port = free_port()
        self.seen: list[Seen] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> HostileUpstream:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port)
        )
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            # an answer that pauses forever (a silent stream) never notices that the gateway
            # left; wait_closed would wait for it
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
            server.close()
            self._loop.run_until_complete(server.wait_closed())
            self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                seen = Seen(head, b"")
                length = int(seen.header("content-length") or 0)
                seen = Seen(head, await reader.readexactly(length) if length else b"")
                self.seen.append(seen)
                for piece in self.answer(seen):
                    if piece == b"":  # an empty piece: a pause, let the gateway read
                        await asyncio.sleep(0.05)
                        continue
                    writer.write(piece)
                    await writer.drain()
                if self.close_after_answer:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def http_response(
    body: bytes, *, status: int = 200, headers: tuple[tuple[str, str], ...] = ()
) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"content-length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunked_head(*, headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    lines = ["HTTP/1.1 200 OK", "transfer-encoding: chunked"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@contextlib.contextmanager
def hostile_stack(tmp: Path, up: HostileUpstream, *extra_args: str) -> Iterator[Stack]:
    """A gateway (``build_stack``) whose OpenAI real key points at ``up``."""
    gen = build_stack(tmp, extra_args=extra_args)
    stack = next(gen)
    try:
        stack.cli.run("providers", "remove", "openai", "--label", "main")
        stack.cli.add_provider("openai", OPENAI_REAL, up.base_url + "/v1", label="evil")
        # until the gateway's key snapshot has the change, OpenAI requests still go to the
        # stack's well-behaved fake, whose answers pass for the hostile one's (status 200,
        # stream events)
        assert wait_for(
            lambda: (
                stack.gateway.real_key_state("openai", "main") is None
                and stack.gateway.real_key_state("openai", "evil") == "healthy"
            )
        ), stack.gateway.log()[-2000:]
        yield stack
    finally:
        next(gen, None)


def gzip_zeros(mib: int) -> bytes:
    """``mib`` MiB of zeros, gzipped (about 1 KiB a MiB): a compression bomb."""
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    zeros = b"\0" * (1 << 20)
    return b"".join([packer.compress(zeros) for _ in range(mib)] + [packer.flush()])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")
