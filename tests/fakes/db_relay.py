"""A loopback TCP relay in front of a database server, to make it refuse or hang.

``down`` closes the port (connections are refused, open ones cut), ``up`` opens it again
on the same port, ``freeze`` keeps accepting and keeps every connection open but forwards
nothing (a hung server: the client's kernel sees its bytes acknowledged, no answer comes),
``thaw`` forwards again, including what was held back.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable


class DbRelay:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._flowing = threading.Event()
        self._flowing.set()

    def up(self) -> None:
        lst = socket.socket()
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lst.bind(("127.0.0.1", self.port))
        lst.listen(64)
        self.port = lst.getsockname()[1]
        self._listener = lst
        self._spawn(self._accept, lst)

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(t)
        t.start()

    def _accept(self, lst: socket.socket) -> None:
        while True:
            try:
                client, _ = lst.accept()
            except OSError:
                return
            self._spawn(self._connect, client)

    def _connect(self, client: socket.socket) -> None:
        self._flowing.wait()  # frozen: the connection is accepted, the server never answers
        try:
            server = socket.create_connection(self.target)
        except OSError:
            client.close()
            return
        with self._lock:
            self._socks += [client, server]
        self._spawn(self._pump, client, server)
        self._spawn(self._pump, server, client)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                self._flowing.wait()
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def down(self) -> None:
        lst, self._listener = self._listener, None
        with self._lock:
            socks, self._socks = self._socks, []
            threads, self._threads = self._threads, []
        self._flowing.set()  # frozen pumps and connects must see their sockets close
        for s in [*([lst] if lst else []), *socks]:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        for t in threads:
            t.join(timeout=5)
        for s in [*([lst] if lst else []), *socks]:
            s.close()
