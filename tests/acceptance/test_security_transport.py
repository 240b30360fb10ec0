"""The API transport from the attacker's side, against a real `snowvault server` process.

What is signed is what runs (one parse of the target; dot segments, raw ``#``/``+`` and
unsigned behaviour-selecting headers refused), no trusted proxy by default
(``X-Forwarded-For`` changes nothing), limits before work (an anonymous 256 MiB body
costs no memory), malformed JSON answers 4xx. Requests are signed with the WALL clock.

The server's request log (``request_id=... op=... principal=... source_ip=...
params=<keyed digest>``) tells which operation ran with which parsed parameters; the
mutation test in ``test_security_transport_mutants.py`` uses it the same way.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

SNOWVAULT = str(Path(sys.executable).with_name("snowvault"))
MiB = 1024 * 1024
_LOG_FIELD = re.compile(r"(\w+)=(\S+)")


# -- a server process of our own (its log is what we observe) ------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    root: Path
    port: int = field(default_factory=_free_port)
    creds: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        return env | {"HOME": str(self.root), "XDG_CONFIG_HOME": str(self.root / ".config")}

    def start(self, **config: Any) -> None:
        args = [SNOWVAULT, "init", "--data-dir", str(self.data_dir), "--port", str(self.port)]
        done = subprocess.run(
            [*args, "--json", "--no-profile"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        self.creds = json.loads(done.stdout.strip().splitlines()[-1])
        path = self.data_dir / "config.json"
        path.write_text(json.dumps(json.loads(path.read_text()) | config))
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [SNOWVAULT, "server", "--data-dir", str(self.data_dir), "--test-mode"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if "snowvault listening on" in self.log.read_text(errors="replace"):
                return
            assert self.proc.poll() is None, self.log.read_text(errors="replace")[-3000:]
            time.sleep(0.05)
        pytest.fail("server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)

    def rss_kib(self) -> int:
        assert self.proc is not None
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        assert found is not None
        return int(found.group(1))

    def client(self, service: str = "backup", key: str = "", secret: str = "") -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=self.creds["region"],
            aws_access_key_id=key or self.creds["access_key_id"],
            aws_secret_access_key=secret or self.creds["secret_access_key"],
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )

    def log_lines(self) -> dict[str, dict[str, str]]:
        """Request log lines by request id."""
        out = {}
        for line in self.log.read_text(errors="replace").splitlines():
            if "snowvault.api" in line and "request_id=" in line:
                fields = dict(_LOG_FIELD.findall(line))
                out[fields["request_id"]] = fields
        return out

    def logged(self, request_id: str) -> dict[str, str]:
        for _ in range(50):
            found = self.log_lines().get(request_id)
            if found is not None:
                return found
            time.sleep(0.02)
        raise AssertionError(f"no log line for {request_id}")


# -- raw HTTP: send exactly these bytes --------------------------------------------------------


@dataclass(frozen=True)
class Wire:
    """One request as bytes go on the wire (headers in order, repeats allowed)."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def code(self) -> str:
        return self.headers.get("x-amzn-errortype", "").rstrip(":")

    @property
    def request_id(self) -> str:
        return self.headers.get("x-amzn-requestid", "")


def send(port: int, wire: Wire, timeout: float = 30) -> Answer:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        head = f"{wire.method} {wire.target} HTTP/1.1\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in wire.headers) + "\r\n"
        sock.sendall(head.encode("latin-1") + wire.body)
        response = http.client.HTTPResponse(sock, method=wire.method)
        response.begin()
        body = response.read()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return Answer(response.status, headers, body)


def sign(
    server: Server,
    method: str,
    url_path: str,
    body: bytes = b"",
    service: str = "backup",
    headers: dict[str, str] | None = None,
    key: str = "",
    secret: str = "",
) -> Wire:
    """Sign like botocore (wall clock); the target is sent exactly as ``url_path``."""
    url = server.endpoint + url_path
    request = AWSRequest(method, url, data=body, headers=dict(headers or {}))
    creds = Credentials(
        key or server.creds["access_key_id"], secret or server.creds["secret_access_key"]
    )
    SigV4Auth(creds, service, server.creds["region"]).add_auth(request)
    pairs = [("Host", urlsplit(url).netloc)]
    pairs += [(k, str(v)) for k, v in request.headers.items()]
    pairs.append(("Content-Length", str(len(body))))
    return Wire(method, url_path, tuple(pairs), body)


def with_target(wire: Wire, target: str) -> Wire:
    return Wire(wire.method, target, wire.headers, wire.body)


def with_headers(wire: Wire, *extra: tuple[str, str], drop: str = "") -> Wire:
    kept = tuple(h for h in wire.headers if h[0].lower() != drop.lower())
    return Wire(wire.method, wire.target, kept + extra, wire.body)


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("transport"))
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def plan(server: Server) -> dict[str, str]:
    backup = server.client()
    backup.create_backup_vault(BackupVaultName="transport-vault")
    rule = {"RuleName": "daily", "TargetBackupVaultName": "transport-vault"}
    created = backup.create_backup_plan(BackupPlan={"BackupPlanName": "p", "Rules": [rule]})
    plan_id = created["BackupPlanId"]
    role = f"arn:aws:iam::{server.creds['account_id']}:role/service-role/backup"
    selection = backup.create_backup_selection(
        BackupPlanId=plan_id,
        BackupSelection={"SelectionName": "s", "IamRoleArn": role, "Resources": ["*"]},
    )
    return {"plan": plan_id, "selection": selection["SelectionId"]}


def ext_call(server: Server, action: str, body: dict[str, Any]) -> dict[str, Any]:
    wire = sign(
        server,
        "POST",
        f"/_snowvault/v1/{action}",
        json.dumps(body).encode(),
        service="snowvault",
        headers={"Content-Type": "application/json"},
    )
    answer = send(server.port, wire)
    assert answer.status == 200, (answer.status, answer.body)
    doc: dict[str, Any] = json.loads(answer.body or b"{}")
    return doc


# -- what is signed is what runs ---------------------------------------------------------------


def test_dot_segments_signed_as_delete_plan_do_not_delete_the_selection(
    server: Server, plan: dict[str, str]
) -> None:
    # botocore removes dot segments before signing: this signs DELETE /backup/plans/ID.
    sneaky = f"/backup/plans/{plan['plan']}/selections/.."
    for path in (sneaky, sneaky.replace("..", "%2E%2E"), f"/backup/plans/{plan['plan']}//"):
        answer = send(server.port, with_target(sign(server, "DELETE", path), path))
        assert answer.status == 400, answer
        assert answer.code == "ValidationException"
        assert b"ambiguous" in answer.body
        assert server.logged(answer.request_id)["params"] == "-"
    backup = server.client()
    got = backup.get_backup_selection(BackupPlanId=plan["plan"], SelectionId=plan["selection"])
    assert got["SelectionId"] == plan["selection"]


@pytest.mark.parametrize(("signed", "sent"), [("%2B", "+"), ("%23", "#"), ("%20", "+")])
def test_raw_hash_or_plus_in_the_query_is_refused(server: Server, signed: str, sent: str) -> None:
    path = f"/backup-jobs/?byResourceArn=arn{signed}x&maxResults=1"
    wire = sign(server, "GET", path)
    answer = send(server.port, with_target(wire, path.replace(signed, sent)))
    assert answer.status == 400, answer
    assert answer.code == "ValidationException"
    assert server.logged(answer.request_id)["params"] == "-"
    as_signed = send(server.port, wire)
    assert as_signed.status == 200, as_signed


def test_unsigned_x_amz_target_cannot_choose_the_kms_operation(server: Server) -> None:
    body = b"{}"
    headers = {"Content-Type": "application/x-amz-json-1.1"}
    wire = sign(server, "POST", "/", body, service="kms", headers=headers)
    answer = send(server.port, with_headers(wire, ("X-Amz-Target", "TrentService.CreateKey")))
    assert answer.status == 403, answer
    assert answer.code == "InvalidSignatureException"
    assert b"x-amz-target" in answer.body
    assert server.logged(answer.request_id)["params"] == "-"
    signed = sign(
        server,
        "POST",
        "/",
        body,
        service="kms",
        headers=headers | {"X-Amz-Target": "TrentService.ListKeys"},
    )
    doubled = with_headers(signed, ("X-Amz-Target", "TrentService.CreateKey"))
    answer = send(server.port, doubled)
    assert answer.status == 400, answer
    assert b"more than once" in answer.body
    assert send(server.port, signed).status == 200


def test_unsigned_content_type_is_refused(server: Server) -> None:
    wire = sign(server, "POST", "/_snowvault/v1/ListUsers", b"{}", service="snowvault")
    answer = send(server.port, with_headers(wire, ("Content-Type", "text/plain")))
    assert answer.status == 403, answer
    assert b"content-type" in answer.body


# -- no trusted proxy by default ---------------------------------------------------------------


def _user_with_source_ip_policy(server: Server, name: str, condition: dict[str, Any]) -> Any:
    ext_call(server, "CreateUser", {"UserName": name})
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "backup:ListBackupVaults",
                "Resource": "*",
                "Condition": condition,
            }
        ],
    }
    ext_call(
        server,
        "PutUserPolicy",
        {"UserName": name, "PolicyName": "ip", "PolicyDocument": json.dumps(policy)},
    )
    key = ext_call(server, "CreateAccessKey", {"UserName": name})["AccessKey"]
    return server.client(key=key["AccessKeyId"], secret=key["SecretAccessKey"])


def _forwarded(client: Any, value: str) -> Any:
    def add(request: Any, **_: Any) -> None:
        request.headers["X-Forwarded-For"] = value

    client.meta.events.register("before-send.backup.*", add)
    return client


def test_x_forwarded_for_changes_nothing(server: Server) -> None:
    outsider = _user_with_source_ip_policy(
        server, "from-outside", {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}
    )
    with pytest.raises(ClientError) as err:
        _forwarded(outsider, "203.0.113.7").list_backup_vaults()
    assert err.value.response["Error"]["Code"] == "AccessDeniedException"
    line = server.logged(err.value.response["ResponseMetadata"]["RequestId"])
    assert line["source_ip"] == "127.0.0.1"
    assert line["principal"].endswith(":user/from-outside")
    assert line["account"] == server.creds["account_id"]

    local = _user_with_source_ip_policy(
        server, "from-loopback", {"IpAddress": {"aws:SourceIp": "127.0.0.1/32"}}
    )
    listed = _forwarded(local, "198.51.100.1, 10.0.0.1").list_backup_vaults()
    line = server.logged(listed["ResponseMetadata"]["RequestId"])
    assert line["source_ip"] == "127.0.0.1"


def test_x_forwarded_for_counts_only_from_a_trusted_proxy(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    proxied = Server(tmp_path_factory.mktemp("proxied"))
    proxied.start(trusted_proxies=["127.0.0.1/32"])
    try:
        outsider = _user_with_source_ip_policy(
            proxied, "via-proxy", {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}
        )
        with pytest.raises(ClientError):
            outsider.list_backup_vaults()  # no header: the proxy itself is the caller
        # The rightmost hop the trusted proxy saw is the caller; what the client put
        # further left is not believed.
        listed = _forwarded(outsider, "127.0.0.9, 203.0.113.7").list_backup_vaults()
        line = proxied.logged(listed["ResponseMetadata"]["RequestId"])
        assert line["source_ip"] == "203.0.113.7"
        with pytest.raises(ClientError):
            _forwarded(outsider, "203.0.113.7, 198.51.100.1").list_backup_vaults()
    finally:
        proxied.stop()


# -- limits before work --------------------------------------------------------------------------


def _stream(total: int, chunk: int = MiB) -> Iterator[bytes]:
    block = b"\x00" * chunk
    sent = 0
    while sent < total:
        n = min(chunk, total - sent)
        yield block[:n]
        sent += n


def _upload(
    port: int, method: str, path: str, headers: dict[str, str], body: Iterable[bytes], chunked: bool
) -> int | None:
    """Stream ``body``; the status, or None when the server closed first (also a refusal)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(method, path, body=body, headers=headers, encode_chunked=chunked)
        return conn.getresponse().status
    except (BrokenPipeError, ConnectionResetError):
        return None
    finally:
        conn.close()


class _Peak:
    """Samples the server's RSS in the background; ``peak`` is the largest seen."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.peak = server.rss_kib()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, self.server.rss_kib())
            time.sleep(0.02)

    def __enter__(self) -> _Peak:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def _signed_headers_only(server: Server, path: str, service: str) -> dict[str, str]:
    """Valid SigV4 headers (for an empty body): they pass every check made before the body."""
    wire = sign(server, "POST", path, b"", service=service)
    return {k: v for k, v in wire.headers if k.lower() not in ("content-length", "host")}


def test_big_bodies_cost_no_memory_and_the_server_still_answers(server: Server) -> None:
    backup = server.client()
    backup.list_backup_vaults()  # warm up
    size = 256 * MiB
    cases = [
        # (method, path, headers, chunked, expected statuses)
        ("POST", "/backup-vaults/x", {"Content-Length": str(400 * 1000 * 1000)}, False),
        ("POST", "/backup-vaults/x", {}, True),
        ("POST", "/_snowvault/v1/RegisterResource", {}, True),
        ("POST", "/_snowvault/reset", {}, True),
        ("POST", "/_snowvault/clock", {}, True),  # test mode: unauthenticated, but bounded
        (
            "PUT",
            "/backup-vaults/x",
            _signed_headers_only(server, "/backup-vaults/x", "backup"),
            True,
        ),
        (
            "POST",
            "/_snowvault/v1/ListUsers",
            _signed_headers_only(server, "/_snowvault/v1/ListUsers", "snowvault"),
            True,
        ),
    ]
    before = server.rss_kib()
    for method, path, headers, chunked in cases:
        total = int(headers.get("Content-Length", size))
        with _Peak(server) as peak:
            status = _upload(server.port, method, path, headers, _stream(total), chunked)
        assert status is None or 400 <= status < 500, (path, status)
        grown = (peak.peak - before) / 1024
        assert grown < 20, f"{method} {path}: RSS grew {grown:.1f} MiB"
        assert backup.list_backup_vaults()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_a_declared_length_over_the_limit_is_413_at_once(server: Server) -> None:
    headers = {"Content-Length": str(5 * MiB)}
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.putrequest("POST", "/_snowvault/v1/ListUsers")
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.endheaders()  # no body byte sent: the answer must not wait for it
    response = conn.getresponse()
    assert response.status == 413
    assert response.getheader("x-amzn-ErrorType") == "RequestEntityTooLargeException:"
    assert json.loads(response.read())["__type"] == "RequestEntityTooLargeException"
    conn.close()


def test_a_signed_body_over_the_limit_is_413(server: Server) -> None:
    body = json.dumps({"Tags": {"k": "v" * (5 * MiB)}}).encode()
    wire = sign(server, "POST", "/_snowvault/v1/ListUsers", body, service="snowvault")
    answer = send(server.port, wire)
    assert answer.status == 413
    assert answer.code == "RequestEntityTooLargeException"


# -- malformed JSON: 4xx, never 500 ---------------------------------------------------------

_BAD_JSON = {
    "deep": b'{"Limit": ' + b"[" * 1000 + b"]" * 1000 + b"}",
    "deep-object": b'{"a":' * 40 + b"1" + b"}" * 40,
    "surrogate": b'{"KeyId": "\\ud800"}',
    "surrogate-key": b'{"\\udfff": 1}',
    "nul": b'{"KeyId": "a\\u0000b"}',
    "float-overflow": b'{"Limit": 1e999}',
    "int-overflow": b'{"Limit": 18446744073709551616}',
    "huge-int": b'{"Limit": ' + b"9" * 5000 + b"}",
    "nan": b'{"Limit": NaN}',
    "duplicate": b'{"Limit": 1, "Limit": 1000}',
    "not-utf8": b'{"KeyId": "\xff"}',
    "not-object": b"[1, 2]",
}


@pytest.mark.parametrize("name", sorted(_BAD_JSON))
def test_malformed_json_is_4xx_on_every_route_kind(server: Server, name: str) -> None:
    body = _BAD_JSON[name]
    kms = sign(
        server,
        "POST",
        "/",
        body,
        service="kms",
        headers={
            "X-Amz-Target": "TrentService.ListKeys",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    backup = sign(server, "PUT", "/backup-vaults/json-vault", body)
    ext = sign(server, "POST", "/_snowvault/v1/ListResources", body, service="snowvault")
    for wire in (kms, backup, ext):
        answer = send(server.port, wire)
        assert 400 <= answer.status < 500, (wire.target, answer)
        assert answer.code in ("SerializationException", "ValidationException"), answer
    assert send(server.port, sign(server, "GET", "/backup-vaults/")).status == 200


def test_overflowing_query_integer_is_4xx(server: Server) -> None:
    path = "/backup-vaults/?maxResults=99999999999999999999999"
    answer = send(server.port, sign(server, "GET", path))
    assert 400 <= answer.status < 500, answer
