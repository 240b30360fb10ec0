"""A fleet for scale-out tests: N `snowvault server` processes on one PostgreSQL catalog
and one S3 vault store (moto's ThreadedMotoServer, in a process of its own), behind one
endpoint (:class:`Proxy`, a round-robin TCP proxy on 127.0.0.1), and agents as
processes.

    with Fleet.start(tmp_path_factory, servers=3) as fleet:
        fleet.front.client().create_backup_vault(...)     # boto3 through the proxy
        fleet.front.ext("RegisterResource", {...})        # extension API, same endpoint
        fleet.kill(1); fleet.restart(1)                   # SIGKILL one server, start it again
        agent = fleet.agent("web-1", allow=tmp)           # `snowvault agent run` process

The first server is made by ``snowvault init --catalog-url postgresql://... --storage
us-east-1=s3://BUCKET/vaults``, every other by ``snowvault init --join FIRST_DIR``
(docs/operations/scale-out.md). Servers run on the wall clock (not --test-mode: each
would keep its own simulated clock). The proxy passes bytes through unchanged, so a
client signs with the proxy's host in its Host header and every server checks that.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest

from helpers.sv_server import SNOWVAULT, ServerProcess, free_port

PG = "postgresql://postgres@127.0.0.1:5432"
REGION = "us-east-1"
S3_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
MOTO = """
import sys, time
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
server.start()
print("moto ready", flush=True)
while True:
    time.sleep(3600)
"""


class Proxy:
    """The fleet's one endpoint: each client connection goes to the next live server
    (round robin; a server refusing connections is skipped, as a load balancer's health
    check would). With ``replay`` a request whose server closed the connection before
    answering a byte is sent again to the next server, as nginx does with
    ``proxy_next_upstream error non_idempotent``. Only the agent operations are safe to
    repeat (docs/operations/scale-out.md); the tests never kill a server while a call
    unsafe to repeat (a StartBackupJob without IdempotencyToken) is in flight."""

    def __init__(self, backends: list[int], *, replay: bool = True) -> None:
        self.backends = list(backends)
        self.replay = replay
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self._next = itertools.count()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.replayed = 0
        self.connections = 0
        self.per_backend: Counter[int] = Counter()
        """Connections (and replays) each server port was given."""
        self._thread = threading.Thread(target=self._accept, name="proxy", daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _connect(self) -> socket.socket | None:
        for _ in range(len(self.backends)):
            port = self.backends[next(self._next) % len(self.backends)]
            try:
                conn = socket.create_connection(("127.0.0.1", port), timeout=5)
            except OSError:
                continue
            conn.settimeout(None)
            with self._lock:
                self.per_backend[port] += 1
            return conn
        return None

    def _serve(self, client: socket.socket) -> None:
        backend = self._connect()
        pending = bytearray()  # the request bytes sent since the last answer byte
        answered = True
        try:
            while backend is not None and not self._stop.is_set():
                ready, _, _ = select.select([client, backend], [], [], 1.0)
                if client in ready:
                    data = client.recv(1 << 16)
                    if not data:
                        return
                    if answered:
                        pending.clear()
                        answered = False
                    pending += data
                    with contextlib.suppress(OSError):
                        backend.sendall(data)  # a dead server shows on its side below
                if backend in ready:
                    try:
                        data = backend.recv(1 << 16)
                    except OSError:
                        data = b""
                    if data:
                        client.sendall(data)
                        answered = True
                        continue
                    backend.close()
                    if answered or not self.replay or not pending:
                        return
                    backend = self._connect()  # the server died before answering
                    if backend is None:
                        return
                    with self._lock:
                        self.replayed += 1
                    backend.sendall(bytes(pending))
        except OSError:
            return
        finally:
            client.close()
            if backend is not None:
                backend.close()


@dataclass
class Agent:
    host: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@dataclass
class Fleet:
    servers: list[ServerProcess]
    proxy: Proxy
    s3_endpoint: str
    bucket: str
    database: str
    moto: subprocess.Popen[bytes]
    tmp: Path
    agents: list[Agent] = field(default_factory=list)

    @classmethod
    @contextlib.contextmanager
    def start(
        cls,
        tmp_path_factory: pytest.TempPathFactory,
        *,
        servers: int = 3,
        replay: bool = True,
        **worker: float,
    ) -> Iterator[Fleet]:
        """``worker``: config.json worker settings of every server (lease_seconds...)."""
        tmp = tmp_path_factory.mktemp("fleet")
        database = f"sv_fleet_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        moto_port = free_port()
        moto = subprocess.Popen(
            [sys.executable, "-c", MOTO, str(moto_port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        )
        fleet: Fleet | None = None
        try:
            assert moto.stdout is not None
            assert moto.stdout.readline().startswith(b"moto ready")
            s3_endpoint = f"http://127.0.0.1:{moto_port}"
            bucket = "fleet-vaults"
            s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name=REGION, **_keys())
            s3.create_bucket(Bucket=bucket)
            made = [_server(tmp, n, s3_endpoint) for n in range(servers)]
            proxy = Proxy([s.port for s in made], replay=replay)
            fleet = cls(made, proxy, s3_endpoint, bucket, database, moto, tmp)
            first = made[0]
            first.init(
                "--catalog-url",
                f"{PG}/{database}",
                "--storage",
                f"{REGION}=s3://{bucket}/vaults",
                "--public-endpoint",
                proxy.endpoint,
                allow_paths=None,
                **worker,
            )
            for other in made[1:]:
                _join(other, first)
            for server in made:
                server.start()
            yield fleet
        finally:
            if fleet is not None:
                fleet.stop()
            moto.kill()
            moto.wait(10)
            if moto.stdout is not None:
                moto.stdout.close()
            with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    @property
    def front(self) -> ServerProcess:
        """The root account's view of the fleet through the proxy: ``client()``,
        ``ext()`` and ``signed()`` go to the one endpoint."""
        return dataclasses.replace(self.servers[0], port=self.proxy.port, proc=None)

    def kill(self, n: int) -> None:
        """SIGKILL server ``n`` (no shutdown: leases, roles and requests cut short)."""
        self.servers[n].stop(signal.SIGKILL)

    def restart(self, n: int) -> None:
        self.servers[n].start()

    def enroll(self, host: str) -> dict[str, str]:
        doc = self.front.ext("EnrollAgent", {"Host": host})
        keys = doc["AccessKey"]
        return {"key": keys["AccessKeyId"], "secret": keys["SecretAccessKey"]}

    def agent(self, host: str, allow: Path, *, lease_seconds: int = 30) -> Agent:
        """Enrol ``host`` and start `snowvault agent run` for it against the proxy."""
        keys = self.enroll(host)
        log = self.tmp / f"agent-{host}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env |= {"AWS_ACCESS_KEY_ID": keys["key"], "AWS_SECRET_ACCESS_KEY": keys["secret"]}
        args = [SNOWVAULT, "agent", "run", "--endpoint", self.proxy.endpoint]
        args += ["--host", host, "--allow-path", str(allow)]
        args += ["--lease-seconds", str(lease_seconds), "--wait-seconds", "5"]
        with log.open("wb") as out:
            proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
        agent = Agent(host, proc, log)
        self.agents.append(agent)
        return agent

    def stop(self) -> None:
        for agent in self.agents:  # no job of theirs is asserted on after this
            agent.stop(signal.SIGKILL)
        for server in self.servers:
            server.stop()
        self.proxy.close()

    def logs(self) -> list[str]:
        """The text of every server run's log, in server then run order."""
        out = []
        for server in self.servers:
            for run in range(1, server.starts + 1):
                log = server.home / f"server-{run}.log"
                out.append(log.read_text(errors="replace") if log.exists() else "")
        return out

    @contextlib.contextmanager
    def inspect(self) -> Iterator[Any]:
        """An in-process App on the first server's data directory (nothing started):
        read the catalog and open the vaults' S3 repositories from the test."""
        from snowvault import app as app_mod

        saved = {k: os.environ.get(k) for k in self.servers[0].extra_env}
        os.environ.update(self.servers[0].extra_env)
        try:
            app = app_mod.build(self.servers[0].data_dir)
            try:
                yield app
            finally:
                app.close()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def server_errors(self) -> list[str]:
        """Every 5xx answer and traceback the servers logged (all their runs)."""
        found = []
        for server in self.servers:
            for run in range(1, server.starts + 1):
                log = server.home / f"server-{run}.log"
                text = log.read_text(errors="replace") if log.exists() else ""
                found += [
                    f"{log.name}: {line}" for line in text.splitlines() if " status=5" in line
                ]
                if "Traceback" in text:
                    found.append(f"{log.name}: a traceback")
        return found


def _keys() -> dict[str, str]:
    return {
        "aws_access_key_id": S3_KEYS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_KEYS["AWS_SECRET_ACCESS_KEY"],
    }


def _server(tmp: Path, n: int, s3_endpoint: str) -> ServerProcess:
    home = tmp / f"home{n}"
    home.mkdir()
    return ServerProcess(
        data_dir=tmp / f"server{n}" / "snowvault",
        home=home,
        port=free_port(),
        test_mode=False,
        extra_env={**S3_KEYS, "AWS_ENDPOINT_URL_S3": s3_endpoint, "AWS_DEFAULT_REGION": REGION},
    )


def _join(server: ServerProcess, first: ServerProcess) -> None:
    args = [SNOWVAULT, "init", "--data-dir", str(server.data_dir), "--join", str(first.data_dir)]
    done = subprocess.run(
        [*args, "--port", str(server.port), "--json"],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    server.creds = dict(first.creds)


def wait_until(check: Any, timeout: float, what: str, every: float = 0.5) -> Any:
    """Poll ``check()`` until it returns something true; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)
