"""A throwaway redis-server for tests: a free loopback port, a temporary directory,
optional password, stopped on every exit path (context manager).

    with redis_server.RedisServer(password="pw") as srv:
        srv.cli("SET", "k", "v")                # redis-cli with REDISCLI_AUTH
        srv.url                                 # "redis://127.0.0.1:PORT"

Runs as ``nobody`` when the tests run as root (the server needs no privilege), in its
own 0700 directory under the system temp dir (pytest's tmp_path is not traversable by
``nobody``), removed afterwards.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """See the module docstring. ``save=True`` keeps the default RDB snapshots on."""

    def __init__(self, *, password: str | None = None, save: bool = False):
        self.directory = Path(tempfile.mkdtemp(prefix="sv-test-redis-"))
        self.password = password
        self.save = save
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def __enter__(self) -> RedisServer:
        user = None
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.directory, nobody.pw_uid, nobody.pw_gid)
            user = "nobody"
        self.port = free_port()
        argv = [
            shutil.which("redis-server") or "redis-server",
            "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.directory), "--appendonly", "no", "--logfile", "",
            "--repl-diskless-sync-delay", "0",  # a replica's (redis-cli --rdb) RDB at once
        ]  # fmt: skip
        if not self.save:
            argv += ["--save", ""]
        if self.password:
            argv += ["--requirepass", self.password]
        self.proc = subprocess.Popen(
            argv, user=user, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.cli("PING").strip() == "PONG":
                    return self
            except subprocess.CalledProcessError:
                pass
            time.sleep(0.05)
        self.__exit__(None, None, None)
        raise RuntimeError("redis-server did not start")

    def cli(self, *args: str) -> str:
        """Run one command with redis-cli (the password in REDISCLI_AUTH); its output."""
        env = dict(os.environ)
        env.pop("REDISCLI_AUTH", None)
        if self.password:
            env["REDISCLI_AUTH"] = self.password
        done = subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *args],
            env=env,
            capture_output=True,
            check=True,
            timeout=10,
        )
        return done.stdout.decode()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        shutil.rmtree(self.directory, ignore_errors=True)
