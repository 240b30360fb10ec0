"""Talking to Redis for the Redis plugin: a small RESP2 client over one TCP connection,
and a temporary ``redis-server`` that loads an RDB so its keys can be read.

    with Connection("127.0.0.1", 6379, password=None) as r:
        r.call("PING")                                  # "PONG"
    with TempServer.loading(rdb_stream, on_bytes) as tmp:
        tmp.connection().call("DBSIZE")

A temporary server runs as an unprivileged user (``nobody`` when the server runs as
root), in a private 0700 temporary directory, listening only on a Unix socket there
(mode 0700: no TCP port exists that another local user could reach while it holds the
restored keys), with persistence off (``save ""``, no AOF), and is stopped on every exit
path. Passwords are sent in AUTH
over the socket, never on a command line.

Depends on core only.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, BinaryIO

from snowvault.core.errors import Unavailable

TIMEOUT = 30.0
START_SECONDS = 60.0
RDB_NAME = "dump.rdb"
UNPRIVILEGED = "nobody"


class ReplyError(Exception):
    """An error reply of the server (``-ERR ...``)."""


class Connection:
    """One RESP2 connection (TCP; port 0: ``address`` is a Unix socket's path);
    :meth:`call` sends a command and returns its reply
    (bytes for bulk strings, str for simple strings, int, list, None), raising
    ReplyError for an error reply. :meth:`pipeline` sends many, then reads all."""

    def __init__(
        self,
        address: str,
        port: int,
        *,
        password: str | None = None,
        user: str | None = None,
        timeout: float = TIMEOUT,
    ) -> None:
        self.address, self.port = address, port
        try:
            if port == 0:  # a Unix socket at path ``address``
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self._sock.settimeout(timeout)
                try:
                    self._sock.connect(address)
                except OSError:
                    self._sock.close()
                    raise
            else:
                self._sock = socket.create_connection((address, port), timeout=timeout)
        except OSError as exc:
            raise Unavailable(
                detail=f"redis: cannot connect to {address}:{port}: {exc.strerror or exc}"
            ) from None
        self._file = self._sock.makefile("rb")
        if password:
            args = ["AUTH", user, password] if user else ["AUTH", password]
            try:
                self.call(*args)
            except ReplyError as exc:
                if "without any password configured" not in str(exc):
                    self.close()
                    raise Unavailable(detail=f"redis: AUTH failed: {exc}") from None

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
            self._sock.close()

    @staticmethod
    def _encode(args: Sequence[Any]) -> bytes:
        out = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg if isinstance(arg, bytes) else str(arg).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        return b"".join(out)

    def _read(self) -> Any:
        line = self._file.readline()
        if not line.endswith(b"\r\n"):
            raise Unavailable(detail=f"redis: {self.address}:{self.port} closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return ReplyError(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = self._file.read(size + 2)
            return data[:-2]
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self._read() for _ in range(count)]
        raise Unavailable(detail=f"redis: unexpected reply {line[:20]!r}")

    def pipeline(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Replies of ``commands`` sent at once (error replies as ReplyError values)."""
        try:
            self._sock.sendall(b"".join(self._encode(c) for c in commands))
            return [self._read() for _ in commands]
        except OSError as exc:
            raise Unavailable(detail=f"redis: {self.address}:{self.port}: {exc}") from None

    def call(self, *args: Any) -> Any:
        [reply] = self.pipeline([args])
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    def info(self, section: str) -> dict[str, str]:
        """``INFO section`` as a dict."""
        text = self.call("INFO", section)
        out: dict[str, str] = {}
        for line in text.decode().splitlines():
            if ":" in line and not line.startswith("#"):
                key, value = line.split(":", 1)
                out[key] = value.strip()
        return out

    def keyspace(self) -> dict[int, int]:
        """Keys per database number (``INFO keyspace``; empty databases left out)."""
        return {db: keys for db, (keys, _) in self.keyspace_expiring().items()}

    def keyspace_expiring(self) -> dict[int, tuple[int, int]]:
        """(keys, keys with a TTL) per database number (empty databases left out)."""
        out: dict[int, tuple[int, int]] = {}
        for name, value in self.info("keyspace").items():
            if name.startswith("db") and name[2:].isdigit():
                fields = dict(f.split("=", 1) for f in value.split(",") if "=" in f)
                keys, expiring = int(fields.get("keys", "0")), int(fields.get("expires", "0"))
                if keys:
                    out[int(name[2:])] = (keys, expiring)
        return out


def _run_as() -> tuple[str | None, int, int]:
    """Who a temporary server runs as: ``nobody`` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None, os.getuid(), os.getgid()
    entry = pwd.getpwnam(UNPRIVILEGED)
    return entry.pw_name, entry.pw_uid, entry.pw_gid


class TempServer:
    """A private ``redis-server`` on ``rdb`` in ``directory``; see the module docstring."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.socket = os.path.join(directory, "redis.sock")
        self._proc: subprocess.Popen[bytes] | None = None

    @classmethod
    @contextlib.contextmanager
    def loading(cls, rdb: BinaryIO, on_bytes: Callable[[int], None]) -> Iterator[TempServer]:
        """A temporary server that loaded the RDB read from ``rdb``."""
        user, uid, gid = _run_as()
        top = tempfile.mkdtemp(prefix="snowvault-redis-")
        try:
            os.chmod(top, 0o700)
            os.chown(top, uid, gid)
            path = os.path.join(top, RDB_NAME)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            done = 0
            with os.fdopen(fd, "wb") as out:
                while chunk := rdb.read(1024 * 1024):
                    out.write(chunk)
                    done += len(chunk)
                    on_bytes(done)
            os.chown(path, uid, gid)
            server = cls(top)
            try:
                server._start(user)
                yield server
            finally:
                server.stop()
        finally:
            shutil.rmtree(top, ignore_errors=True)

    def _start(self, user: str | None) -> None:
        program = shutil.which("redis-server") or "redis-server"
        argv = [
            program,
            "--port", "0",  # no TCP port another local user could reach
            "--unixsocket", self.socket,
            "--unixsocketperm", "700",
            "--dir", self.directory,
            "--dbfilename", RDB_NAME,
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--logfile", "",
            "--databases", "256",
        ]  # fmt: skip
        try:
            self._proc = subprocess.Popen(
                argv,
                user=user,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=self.directory,
            )
        except FileNotFoundError:
            raise Unavailable(detail="redis: redis-server is not installed") from None
        if not self._wait_ready():
            self.stop()
            raise Unavailable(detail="redis: a temporary redis-server did not load the RDB")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                return False
            try:
                with Connection(self.socket, 0, timeout=2.0) as conn:
                    conn.call("PING")
                    return True
            except (Unavailable, ReplyError, OSError):
                time.sleep(0.05)  # not listening yet, or LOADING
        return False

    def connection(self) -> Connection:
        return Connection(self.socket, 0)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
