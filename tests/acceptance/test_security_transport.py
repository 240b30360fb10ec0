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


# -- the mutation test: one change to a signed request, never a different request ---------------
#
# Each base request is signed by botocore (wall clock) as a real client would send it; each
# mutant changes ONE thing. A mutant is either refused before anything runs (its log line
# says params=-, or the HTTP layer refused it without a log line) or it ran EXACTLY the
# signed request: the same operation, parsed parameters (keyed digest), principal,
# account and source IP as the base. "ran-other" must stay 0 and no answer may be a 5xx.


class _Captured(Exception):
    def __init__(self, request: Any) -> None:
        super().__init__("captured")
        self.request = request


def _captured(client: Any, operation: str, **params: Any) -> Wire:
    """The request botocore would send for ``operation`` (signed), without sending it."""

    def grab(request: Any, **_: Any) -> None:
        raise _Captured(request)

    client.meta.events.register_first("before-send", grab)
    try:
        getattr(client, operation)(**params)
    except _Captured as caught:
        request = caught.request
    finally:
        client.meta.events.unregister("before-send", grab)
    url = urlsplit(request.url)
    body = request.body or b""
    body = body.encode() if isinstance(body, str) else bytes(body)
    headers = [("Host", url.netloc)]
    for k, v in request.headers.items():
        headers.append((k, v.decode() if isinstance(v, bytes) else str(v)))
    headers.append(("Content-Length", str(len(body))))
    target = url.path + (f"?{url.query}" if url.query else "")
    return Wire(request.method, target, tuple(headers), body)


def _bases(server: Server, plan: dict[str, str], other: dict[str, str]) -> dict[str, Wire]:
    backup, kms = server.client(), server.client("kms")
    key_id = kms.create_key(Description="mutants")["KeyMetadata"]["KeyId"]
    region, account = server.creds["region"], server.creds["account_id"]
    vault_arn = f"arn:aws:backup:{region}:{account}:backup-vault:transport-vault"
    odd = "arn:aws:ec2:us-east-1:123456789012:volume/a+b c#d%e~f"

    def ext(action: str, body: dict[str, Any]) -> Wire:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        return sign(server, "POST", f"/_snowvault/v1/{action}", data, "snowvault", headers)

    return {
        "ListBackupVaults": _captured(backup, "list_backup_vaults", MaxResults=5),
        "DescribeBackupVault": _captured(
            backup, "describe_backup_vault", BackupVaultName="transport-vault"
        ),
        "ListRecoveryPointsByBackupVault": _captured(
            backup,
            "list_recovery_points_by_backup_vault",
            BackupVaultName="transport-vault",
            ByResourceArn=odd,
            MaxResults=3,
        ),
        "ListBackupJobs": _captured(
            backup, "list_backup_jobs", ByResourceArn=odd, ByState="COMPLETED", MaxResults=7
        ),
        "ListBackupJobs-plus": _captured(
            backup, "list_backup_jobs", ByMessageCategory="a+b c#d", ByParentJobId="x+y%z"
        ),
        "GetBackupPlan": _captured(backup, "get_backup_plan", BackupPlanId=plan["plan"]),
        "GetBackupSelection": _captured(
            backup,
            "get_backup_selection",
            BackupPlanId=plan["plan"],
            SelectionId=plan["selection"],
        ),
        "DeleteBackupPlan": _captured(backup, "delete_backup_plan", BackupPlanId=plan["plan"]),
        "ListTags": _captured(backup, "list_tags", ResourceArn=vault_arn),
        "TagResource": _captured(
            backup, "tag_resource", ResourceArn=vault_arn, Tags={"k": "a+b c#d"}
        ),
        "CreateBackupVault": _captured(
            backup, "create_backup_vault", BackupVaultName="mutant-vault"
        ),
        "ListProtectedResources": _captured(backup, "list_protected_resources", MaxResults=2),
        "kms-ListKeys": _captured(kms, "list_keys", Limit=10),
        "kms-DescribeKey": _captured(kms, "describe_key", KeyId=key_id),
        "kms-Encrypt": _captured(kms, "encrypt", KeyId=key_id, Plaintext=b"a+b #c"),
        "kms-ListAliases": _captured(kms, "list_aliases"),
        "ext-ListResources": ext("ListResources", {"MaxResults": 5}),
        "ext-ListUsers": ext("ListUsers", {}),
        "ext-DescribeResource": ext("DescribeResource", {"ResourceArn": odd}),
    }


def _split(target: str) -> tuple[str, str]:
    path, _, query = target.partition("?")
    return path, query


def _join(path: str, query: str | None) -> str:
    return path if query is None else f"{path}?{query}"


def _replace_header(wire: Wire, name: str, value: str | None) -> Wire:
    out: list[tuple[str, str]] = []
    for k, v in wire.headers:
        if k.lower() == name.lower():
            if value is not None:
                out.append((k, value))
        else:
            out.append((k, v))
    return Wire(wire.method, wire.target, tuple(out), wire.body)


def _header(wire: Wire, name: str) -> str | None:
    for k, v in wire.headers:
        if k.lower() == name.lower():
            return v
    return None


def _with_body(wire: Wire, body: bytes) -> Wire:
    changed = Wire(wire.method, wire.target, wire.headers, body)
    return _replace_header(changed, "Content-Length", str(len(body)))


_AUTH = re.compile(r"^(\S+) Credential=([^,]+), SignedHeaders=([^,]+), Signature=(\w+)$")


def _auth_mutants(wire: Wire, other_key: str) -> Iterator[tuple[str, Wire]]:
    auth = _header(wire, "Authorization")
    assert auth is not None
    found = _AUTH.match(auth)
    assert found is not None, auth
    algorithm, credential, signed, signature = found.groups()
    key, date, region, service, term = credential.split("/")

    def build(a: str = algorithm, c: str = credential, s: str = signed, g: str = signature) -> Wire:
        return _replace_header(
            wire, "Authorization", f"{a} Credential={c}, SignedHeaders={s}, Signature={g}"
        )

    names = signed.split(";")
    for i in range(len(names)):
        yield f"signed-drop-{names[i]}", build(s=";".join(names[:i] + names[i + 1 :]))
    yield "signed-add", build(s=";".join(sorted([*names, "x-forwarded-for"])))
    yield "signed-add-missing", build(s=";".join(sorted([*names, "x-nothing"])))
    yield "signed-reversed", build(s=";".join(reversed(names)))
    scope = [key, date, region, service, term]
    swaps = {
        0: ["AKIAUNKNOWNKEY000000", other_key, key.lower()],
        1: [str(int(date) - 1), str(int(date) + 1)],
        2: ["us-west-2", "eu-central-1"],
        3: ["backup", "kms", "snowvault", "iam"],
        4: ["aws4_requesx"],
    }
    for index, values in swaps.items():
        for value in values:
            if value != scope[index]:
                changed = [*scope[:index], value, *scope[index + 1 :]]
                yield f"credential-{index}-{value}", build(c="/".join(changed))
    flipped = ("1" if signature[0] != "1" else "2") + signature[1:]
    yield "signature-first", build(g=flipped)
    yield "signature-last", build(g=signature[:-1] + ("0" if signature[-1] != "0" else "f"))
    yield "signature-short", build(g=signature[:-2])
    yield "signature-upper", build(g=signature.upper())
    yield "algorithm", build(a="AWS4-HMAC-SHA512")
    yield "authorization-removed", _replace_header(wire, "Authorization", None)
    yield "authorization-twice", with_headers(wire, ("Authorization", auth))


def _path_mutants(wire: Wire) -> Iterator[tuple[str, str]]:
    path, query = _split(wire.target)
    q = query if query else None
    for suffix in (
        "/",
        "/..",
        "/.",
        "/./",
        "//",
        "/x/..",
        "/%2e%2e",
        "/%2E",
        "%2F",
        "/x",
        "/selections/..",
        "/selections/%2e%2e",
        "#",
        "#x",
        ";x",
        "%00",
        "/%00",
    ):
        yield f"path-append-{suffix}", _join(path + suffix, q)
    if path.endswith("/") and len(path) > 1:
        yield "path-trailing-slash-removed", _join(path[:-1], q)
    yield "path-prefix-dot", _join("/." + path, q)
    yield "path-prefix-dotdot", _join("/x/.." + path, q)
    yield "path-prefix-double", _join("/" + path, q)
    yield "path-upper", _join(path.upper(), q)
    segments = path.split("/")
    for i, segment in enumerate(segments):
        if not segment:
            continue
        for label, new in (
            ("dot", "."),
            ("dotdot", ".."),
            ("dotdot-after", segment + "/.."),
            ("encoded-dotdot", "%2e%2e"),
            ("double", segment + "/"),
            ("changed", segment[:-1] + ("x" if segment[-1] != "x" else "y")),
            ("first-char-escaped", f"%{ord(segment[0]):02X}" + segment[1:]),
            ("lower-escapes", re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), segment)),
            ("decoded-2F", segment.replace("%2F", "/")),
            ("decoded-3A", segment.replace("%3A", ":")),
            ("decoded-20", segment.replace("%20", " ")),
            ("escaped-percent", segment.replace("%", "%25")),
            ("plus-for-2B", segment.replace("%2B", "+")),
            ("hash-for-23", segment.replace("%23", "#")),
        ):
            if new != segment:
                changed = "/".join([*segments[:i], new, *segments[i + 1 :]])
                yield f"segment-{i}-{label}", _join(changed, q)


def _query_mutants(wire: Wire) -> Iterator[tuple[str, str]]:
    path, query = _split(wire.target)
    items = query.split("&") if query else []
    for extra in ("MaxResults=1", "maxResults=1000", "foo=bar", "NextToken=x", "delete"):
        yield f"query-add-{extra}", _join(path, "&".join([*items, extra]))
    yield "query-add-empty", _join(path, "")
    if not items:
        return
    yield "query-removed", path
    yield "query-reversed", _join(path, "&".join(reversed(items)))
    yield "query-trailing-amp", _join(path, query + "&")
    yield (
        "query-double-amp",
        _join(path, query.replace("&", "&&", 1) if "&" in query else "&" + query),
    )
    yield "query-trailing-hash", _join(path, query + "#")
    yield "query-semicolon", _join(path, query + ";x=1")
    for i, item in enumerate(items):
        key, _, value = item.partition("=")
        rest = items[:i] + items[i + 1 :]
        yield f"query-{key}-removed", _join(path, "&".join(rest))
        yield f"query-{key}-twice", _join(path, "&".join([*items, item]))
        yield f"query-{key}-twice-other", _join(path, "&".join([*items, f"{key}={value}x"]))
        yield f"query-{key}-changed", _join(path, "&".join([*rest, f"{key}={value}x"]))
        yield f"query-{key}-case", _join(path, "&".join([*rest, f"{key.swapcase()}={value}"]))
        yield f"query-{key}-no-equals", _join(path, "&".join([*rest, key]))
        for label, old, new in (
            ("plus", "%2B", "+"),
            ("space-plus", "%20", "+"),
            ("hash", "%23", "#"),
            ("lower", "%2B", "%2b"),
            ("colon", "%3A", ":"),
            ("slash", "%2F", "/"),
            ("tilde", "~", "%7E"),
            ("double-escape", "%", "%25"),
            ("bad-escape", "%2", "%G"),
        ):
            if old in value:
                changed = f"{key}={value.replace(old, new, 1)}"
                yield (
                    f"query-{key}-{label}",
                    _join(path, "&".join([*items[:i], changed, *items[i + 1 :]])),
                )
        if value:
            escaped = f"{key}=%{ord(value[0]):02X}{value[1:]}"
            yield (
                f"query-{key}-first-escaped",
                _join(path, "&".join([*items[:i], escaped, *items[i + 1 :]])),
            )


def _header_mutants(wire: Wire, port: int) -> Iterator[tuple[str, Wire]]:
    for value in ("203.0.113.9", "127.0.0.1, 10.0.0.1", "garbage", ""):
        yield f"xff-{value}", with_headers(wire, ("X-Forwarded-For", value))
    yield "x-real-ip", with_headers(wire, ("X-Real-IP", "203.0.113.9"))
    yield "forwarded", with_headers(wire, ("Forwarded", "for=203.0.113.9"))
    yield "unrelated-header", with_headers(wire, ("X-Foo", "1"))
    yield "unsigned-amz-header", with_headers(wire, ("X-Amz-Foo", "1"))
    yield "unsigned-payload", with_headers(wire, ("X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD"))
    target = _header(wire, "X-Amz-Target")
    for value in ("TrentService.ListKeys", "TrentService.CreateKey", "AWSBackup.ListBackupVaults"):
        if target is None:
            yield f"target-added-{value}", with_headers(wire, ("X-Amz-Target", value))
        elif value != target:
            yield f"target-changed-{value}", _replace_header(wire, "X-Amz-Target", value)
            yield f"target-second-{value}", with_headers(wire, ("X-Amz-Target", value))
    if target is not None:
        yield "target-twice", with_headers(wire, ("X-Amz-Target", target))
        yield "target-removed", _replace_header(wire, "X-Amz-Target", None)
        yield "target-case", _replace_header(wire, "X-Amz-Target", target.lower())
    content_type = _header(wire, "Content-Type")
    for value in ("application/x-www-form-urlencoded", "application/json", "text/plain"):
        if content_type is None:
            yield f"content-type-added-{value}", with_headers(wire, ("Content-Type", value))
        elif value != content_type:
            yield f"content-type-{value}", _replace_header(wire, "Content-Type", value)
    if content_type is not None:
        yield "content-type-removed", _replace_header(wire, "Content-Type", None)
        yield "content-type-twice", with_headers(wire, ("Content-Type", content_type))
    for value in (f"localhost:{port}", "127.0.0.1", f"127.0.0.2:{port}"):
        yield f"host-{value}", _replace_header(wire, "Host", value)
    yield "host-twice", with_headers(wire, ("Host", f"127.0.0.1:{port}"))
    date = _header(wire, "X-Amz-Date")
    assert date is not None
    later = date[:-3] + f"{(int(date[-3:-1]) + 1) % 60:02d}Z"
    yield "date-changed", _replace_header(wire, "X-Amz-Date", later)
    yield "date-removed", _replace_header(wire, "X-Amz-Date", None)
    yield "date-twice", with_headers(wire, ("X-Amz-Date", date))
    yield "date-twice-other", with_headers(wire, ("X-Amz-Date", later))
    yield "date-header-added", with_headers(wire, ("Date", "Mon, 01 Jan 2024 00:00:00 GMT"))
    upper = tuple((k.upper(), v) for k, v in wire.headers)
    yield "header-names-upper", Wire(wire.method, wire.target, upper, wire.body)
    spaced = tuple(
        (k, f"  {v}  ") if k.lower() != "content-length" else (k, v) for k, v in wire.headers
    )
    yield "header-values-padded", Wire(wire.method, wire.target, spaced, wire.body)
    chunked = (
        f"{len(wire.body):x}\r\n".encode() + wire.body + b"\r\n0\r\n\r\n"
        if wire.body
        else b"0\r\n\r\n"
    )
    as_chunks = _replace_header(wire, "Content-Length", None)
    yield (
        "chunked",
        Wire(
            as_chunks.method,
            as_chunks.target,
            (*as_chunks.headers, ("Transfer-Encoding", "chunked")),
            chunked,
        ),
    )


def _body_mutants(wire: Wire) -> Iterator[tuple[str, Wire]]:
    body = wire.body
    if not body:
        yield "body-added", _with_body(wire, b"{}")
        yield "body-added-member", _with_body(wire, b'{"MaxResults": 1}')
        return
    yield "body-space-after", _with_body(wire, body + b" ")
    yield "body-space-before", _with_body(wire, b" " + body)
    yield "body-truncated", _with_body(wire, body[:-1])
    yield "body-empty", _with_body(wire, b"")
    for at in sorted({0, len(body) // 2, len(body) - 2}):
        flipped = body[:at] + bytes([body[at] ^ 0x01]) + body[at + 1 :]
        yield f"body-flip-{at}", _with_body(wire, flipped)
    if body.startswith(b"{") and len(body) > 2:
        yield "body-member-added", _with_body(wire, b'{"MaxResults": 1, ' + body[1:])
        first_key = body.split(b":", 1)[0][1:]
        yield "body-duplicate-key", _with_body(wire, body[:-1] + b", " + first_key + b": null}")


def _mutants(wire: Wire, port: int, other_key: str) -> Iterator[tuple[str, Wire]]:
    for method in ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"):
        if method != wire.method:
            yield f"method-{method}", Wire(method, wire.target, wire.headers, wire.body)
    for name, target in _path_mutants(wire):
        yield name, with_target(wire, target)
    for name, target in _query_mutants(wire):
        yield name, with_target(wire, target)
    yield from _header_mutants(wire, port)
    yield from _body_mutants(wire)
    yield from _auth_mutants(wire, other_key)


def _outcome(fields: dict[str, str]) -> tuple[str, ...]:
    return tuple(
        fields[k] for k in ("service", "op", "account", "principal", "source_ip", "params")
    )


def test_every_mutant_of_a_signed_request_is_refused_or_runs_as_signed(
    server: Server, plan: dict[str, str]
) -> None:
    ext_call(server, "CreateUser", {"UserName": "mutant-other"})
    other = ext_call(server, "CreateAccessKey", {"UserName": "mutant-other"})["AccessKey"]
    started = time.monotonic()
    bases = _bases(server, plan, other)
    expected: dict[str, tuple[str, ...]] = {}
    for name, wire in bases.items():
        answer = send(server.port, wire)
        assert answer.status < 500, (name, answer)
        fields = server.logged(answer.request_id)
        assert fields["params"] != "-", (name, answer)
        expected[name] = _outcome(fields)
    sent: list[tuple[str, str, Answer]] = []
    for name, wire in bases.items():
        for mutant, changed in _mutants(wire, server.port, other["AccessKeyId"]):
            try:
                answer = send(server.port, changed, timeout=10)
            except (http.client.HTTPException, OSError) as exc:
                answer = Answer(499, {}, repr(exc).encode())  # the server dropped it
            sent.append((name, mutant, answer))
    time.sleep(0.2)
    log = server.log_lines()
    counts = {"refused": 0, "ran-as-signed": 0, "ran-other": 0}
    failures = []
    ran: set[str] = set()
    for name, mutant, answer in sent:
        fields = log.get(answer.request_id)
        if answer.status >= 500:
            failures.append((name, mutant, answer.status, answer.body[:200]))
        if fields is None or fields["params"] == "-":
            counts["refused"] += 1
            if answer.status < 400:
                failures.append((name, mutant, "refused but", answer.status))
        elif _outcome(fields) == expected[name]:
            counts["ran-as-signed"] += 1
            ran.add(re.sub(r"-\d+-", "-N-", mutant))
        else:
            counts["ran-other"] += 1
            failures.append((name, mutant, _outcome(fields), expected[name]))
    elapsed = time.monotonic() - started
    print(f"\nmutants={len(sent)} bases={len(bases)} {counts} seconds={elapsed:.1f}")
    print("kinds that ran as signed:", sorted(ran))
    assert not failures, failures[:20]
    assert counts["ran-other"] == 0
    assert len(sent) >= 1000
    assert counts["ran-as-signed"] > 0 and counts["refused"] > 0
