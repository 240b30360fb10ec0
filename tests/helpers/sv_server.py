"""A snowvault server subprocess for acceptance tests (the fixtures are in conftest.py).

:class:`ServerProcess` inits a data dir, starts `snowvault server --test-mode` on a free
loopback port, waits for its ready line, and can stop it (even SIGKILL) and restart it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

SNOWVAULT = str(Path(sys.executable).with_name("snowvault"))
READY_LINE = "snowvault listening on"

ExtCall = Callable[[str, dict[str, Any]], dict[str, Any]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    """One data directory and the server process serving it (restartable)."""

    data_dir: Path
    home: Path
    port: int
    creds: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    test_mode: bool = True
    """False: the server runs on the wall clock (a fleet: every server the same clock)."""
    extra_env: dict[str, str] = field(default_factory=dict)
    """Added to the server's environment (an S3 vault store's endpoint and keys)."""

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        home = {"HOME": str(self.home), "XDG_CONFIG_HOME": str(self.home / ".config")}
        return env | home | self.extra_env

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.home / f"server-{self.starts}.log"

    def init(
        self, *extra_args: str, allow_paths: tuple[str, ...] | None = None, **worker: float
    ) -> None:
        """``allow_paths`` (default: the pytest tmp root, the tests' sources and targets
        live there; ``()``: init's own default rule) become ``--allow-path`` options."""
        args = [SNOWVAULT, "init", "--data-dir", str(self.data_dir), "--port", str(self.port)]
        roots = (str(self.data_dir.parent.parent),) if allow_paths is None else allow_paths
        args += [*extra_args, *(a for root in roots for a in ("--allow-path", root))]
        done = subprocess.run(
            [*args, "--json"], env=self.env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        self.creds = json.loads(done.stdout.strip().splitlines()[-1])
        if worker:
            path = self.data_dir / "config.json"
            config = json.loads(path.read_text())
            config["worker"].update(worker)
            path.write_text(json.dumps(config))

    def start(self) -> None:
        self.starts += 1
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [SNOWVAULT, "server", "--data-dir", str(self.data_dir)]
                + (["--test-mode"] if self.test_mode else []),
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if READY_LINE in self.log.read_text(errors="replace"):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        pytest.fail(f"server did not start:\n{self.log.read_text(errors='replace')[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)
        self.proc = None

    def client(self, region: str | None = None, **overrides: str) -> Any:
        return boto3.client(
            "backup",
            endpoint_url=self.endpoint,
            region_name=region or self.creds["region"],
            aws_access_key_id=overrides.get("key", self.creds["access_key_id"]),
            aws_secret_access_key=overrides.get("secret", self.creds["secret_access_key"]),
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )

    def signed(
        self, method: str, path: str, body: bytes, service: str = "snowvault", **headers: str
    ) -> urllib3.BaseHTTPResponse:
        """Send a request signed with the root key for ``service``; any status comes back."""
        req = AWSRequest(method, self.endpoint + path, data=body, headers=dict(headers))
        creds = Credentials(self.creds["access_key_id"], self.creds["secret_access_key"])
        SigV4Auth(creds, service, self.creds["region"]).add_auth(req)
        return urllib3.request(
            method, req.url, body=body, headers=dict(req.headers.items()), retries=False
        )

    def ext(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        """Call the extension API; raises AssertionError with the error on a non-200."""
        resp = self.signed(
            "POST",
            f"/_snowvault/v1/{action}",
            json.dumps(body).encode(),
            **{"Content-Type": "application/json"},
        )
        doc: dict[str, Any] = json.loads(resp.data or b"{}")
        assert resp.status == 200, (resp.status, doc)
        return doc

    def agent_call(
        self, key: dict[str, str], action: str, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        """One extension call signed with the key pair ``key`` (``AccessKeyId``,
        ``SecretAccessKey``: an agent's, a user's), not retried: (status, answer)."""
        data = json.dumps(body).encode()
        url = f"{self.endpoint}/_snowvault/v1/{action}"
        req = AWSRequest("POST", url, data=data, headers={"Content-Type": "application/json"})
        creds = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
        SigV4Auth(creds, "snowvault", self.creds["region"]).add_auth(req)
        resp = urllib3.request(
            "POST", url, body=data, headers=dict(req.headers.items()), retries=False, timeout=60
        )
        doc: dict[str, Any] = json.loads(resp.data or b"{}")
        return resp.status, doc

    def reset(self) -> None:
        resp = self.signed("POST", "/_snowvault/reset", b"")
        assert resp.status == 200, resp.data


def new_server(tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:
    home = tmp_path_factory.mktemp("home")
    data = tmp_path_factory.mktemp("data") / "snowvault"
    return ServerProcess(data_dir=data, home=home, port=free_port())


def user_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server as a user runs it (SigV4 checked against the wall clock, no test mode),
    for a module's fixture; after it stops, any 5xx answer in its log fails the test.

        @pytest.fixture(scope="module")
        def server(tmp_path_factory): yield from user_server(tmp_path_factory)
    """
    proc = new_server(tmp_path_factory)
    proc.test_mode = False
    proc.init()
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()
    failures = [line for line in proc.log.read_text().splitlines() if " status=5" in line]
    assert not failures, f"the server answered 5xx: {failures}"


def move_clock(server: ServerProcess, **body: Any) -> dict[str, Any]:
    """POST /_snowvault/clock (``advance_seconds`` or ``now``) of a --test-mode server; its
    answer's ``Now`` is the simulated time. Clients keep signing with the wall clock."""
    resp = urllib3.request(  # the route is not signed (test mode only)
        "POST", server.endpoint + "/_snowvault/clock", body=json.dumps(body).encode(), timeout=600
    )
    doc: dict[str, Any] = json.loads(resp.data)
    assert resp.status == 200, doc
    return doc


def simulated_now(doc: dict[str, Any]) -> datetime:
    """The simulated time a :func:`move_clock` answer carries."""
    return datetime.fromisoformat(doc["Now"])
