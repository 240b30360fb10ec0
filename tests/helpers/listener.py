"""A TCP listener on 127.0.0.1 that records every byte its clients send, for probes that
check what a restore or a delivery hands a server the caller named (a honeypot): a
subclass says how to answer in :meth:`Listener.talk`."""

from __future__ import annotations

import contextlib
import socket
import threading


class Listener:
    def __init__(self) -> None:
        self.received = bytearray()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn, contextlib.suppress(OSError):
                conn.settimeout(3)
                self.talk(conn)

    def read(self, conn: socket.socket) -> bytes:
        """One recv, recorded."""
        data = conn.recv(65536)
        self.received += data
        return data

    def talk(self, conn: socket.socket) -> None:
        """Answer one client (the connection closes when this returns)."""
        raise NotImplementedError

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()
