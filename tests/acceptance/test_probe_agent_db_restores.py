"""Restores of Redis, MySQL and S3 points through an agent, from the attacker's side
(helper Q's probe): real processes (`snowvault server`, `snowvault agent run`, a
password protected redis-server, MariaDB on 127.0.0.1:3306, moto S3) and a "honeypot"
listener on the agent host's loopback that records what reaches it. (PostgreSQL:
tests/acceptance/test_probe_pg_validation_query.py.)

The abuse case: a principal allowed StartRestoreJob (but never shown the resource's
sealed password) names the restore target. The agent's --allow-network (loopback by
default) lets it reach any loopback port, where an unprivileged user of that host may
listen. Found:

- Redis: a ``targetUrl`` restore signs in to *any* named server with the resource's
  password, and Redis AUTH is cleartext: the honeypot receives the password
  (``plugins/redis.py``: ``Redis.restore`` uses ``_password(request.resource)`` for every
  ``targetUrl``). Fixed: the plugin sends the resource's password only to the resource's
  own server and user (``Redis._target_password``, as ``postgresql._target_password``).
- MySQL/MariaDB: a ``targetDsn`` restore logs in to any named server with the
  resource's password (``plugins/mysql.py``: ``MySQL.restore`` ->
  ``_password(request.resource)``); a fake server that announces the cleartext plugin
  gets the password in clear in the client's very first answer (the MariaDB client
  10.11 honours ``mysql_clear_password`` without TLS). Fixed the same way
  (``MySQL._target_password``): another server is signed in to without a password, so
  it sees the user name (not a secret: it is in the Source and the Metadata) and no
  password, in clear or as a hash challenge.

Held (tests pass): an S3 restore to an endpoint the caller names sends a SigV4 signature
for that host, never the secret key, and Metadata carrying keys or a URL with
credentials is refused at the call; a malformed database name (NUL, over 64 characters, a trailing
space) is refused at StartRestoreJob before any job exists; a name with quotes,
semicolons, backticks, a leading ``--`` or ``..`` is legal in MySQL and stays a name
(that database is created, nothing else changes); a ``targetPath`` with a ``..`` part
is refused at the call; one through a symlink out of the agent's --allow-path, or at the
server's data directory, ends the job FAILED with nothing written; another host's agent
is never handed the job.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from helpers import stories
from helpers.listener import Listener
from helpers.redis_server import RedisServer
from helpers.sv_server import SNOWVAULT, ServerProcess, new_server

HOST = "db-probe"
VAULT = "dbprobe"
REDIS_PASSWORD = "redis-S3cret-never-sent-away"
MYSQL_PASSWORD = "mysql-S3cret-never-sent-away"
S3_SECRET = "s3-S3cret-never-sent-away"
MYSQL_USER = f"svq_{uuid.uuid4().hex[:8]}"
MYSQL_DB = f"svq_db_{uuid.uuid4().hex[:8]}"
FINAL = {"COMPLETED", "FAILED", "ABORTED", "EXPIRED", "PARTIAL"}


class Honeypot(Listener):
    """A TCP listener on 127.0.0.1 that records every byte a client sends. ``mysql``:
    it greets as a MySQL server asking for the cleartext auth plugin and, after the
    client's answer, switches to that plugin; ``redis``: answers every read with an
    error."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.auth_responses: list[bytes] = []  # what each login sent as its password proof
        super().__init__()

    def talk(self, conn: socket.socket) -> None:
        if self.kind == "redis":
            while self.read(conn):
                conn.sendall(b"-ERR honeypot\r\n")
            return
        if self.kind == "http":
            while self.read(conn):
                conn.sendall(
                    b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\n"
                    b"Content-Length: 62\r\n\r\n"
                    b"<Error><Code>AccessDenied</Code><Message>no</Message></Error>"
                )
            return
        conn.sendall(_packet(0, _mysql_greeting()))
        answer = self.read(conn)  # the HandshakeResponse
        if not answer:
            return
        self.auth_responses.append(_auth_response(answer).rstrip(b"\x00"))  # clear: NUL-ended
        conn.sendall(_packet(2, b"\xfe" + b"mysql_clear_password\x00"))
        clear = self.read(conn)  # the password, if the client sends it in clear
        self.auth_responses.append(clear[4:].rstrip(b"\x00"))
        conn.sendall(_packet(4, b"\xff\x15\x04#28000honeypot"))


def _auth_response(packet: bytes) -> bytes:
    """The auth-response of a HandshakeResponse41 packet (header included): for the
    greeting's cleartext plugin the password and a NUL, for a login without one the NUL
    alone."""
    body = packet[4:]
    caps = struct.unpack("<I", body[:4])[0]
    at = body.index(b"\x00", 32) + 1  # caps, max packet, charset, 23 filler; user NUL
    if caps & 0x200000 or caps & 0x8000:  # length-prefixed (lenenc < 251: one byte)
        return body[at + 1 : at + 1 + body[at]]
    return body[at : body.index(b"\x00", at)]


def _packet(seq: int, payload: bytes) -> bytes:
    return struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload


def _mysql_greeting() -> bytes:
    caps = 0x1 | 0x8 | 0x200 | 0x8000 | 0x80000 | 0x200000  # 4.1, secure, plugin auth
    return (
        b"\x0a5.7.99-honeypot\x00"
        + struct.pack("<I", 7)
        + b"abcdefgh\x00"
        + struct.pack("<H", caps & 0xFFFF)
        + b"\x21"
        + struct.pack("<H", 2)
        + struct.pack("<H", caps >> 16)
        + bytes([21])
        + b"\x00" * 10
        + b"ijklmnopqrst\x00"
        + b"mysql_clear_password\x00"
    )


def _sql(statements: str) -> str:
    argv = ["mariadb", "-uroot", "-h127.0.0.1", "-P3306", "-N", "-B"]
    done = subprocess.run(argv, input=statements.encode(), capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.decode()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, s3_server: str) -> Iterator[dict[str, Any]]:
    host_dir = Path(tempfile.mkdtemp(prefix="sv-q-dbprobe-"))
    os.chmod(host_dir, 0o755)
    server = new_server(tmp_path_factory)
    server.init(allow_paths=(str(host_dir),), lease_seconds=10, sweep_seconds=1, poll_seconds=0.2)
    server.start()
    procs: list[subprocess.Popen[bytes]] = []
    _sql(
        f"CREATE DATABASE `{MYSQL_DB}`; "
        f"CREATE TABLE `{MYSQL_DB}`.t (id INT PRIMARY KEY, v TEXT); "
        f"INSERT INTO `{MYSQL_DB}`.t VALUES (1, 'one'), (2, 'two'); "
        f"CREATE USER '{MYSQL_USER}'@'127.0.0.1' IDENTIFIED BY '{MYSQL_PASSWORD}'; "
        f"GRANT ALL ON *.* TO '{MYSQL_USER}'@'127.0.0.1';"
    )
    redis = RedisServer(password=REDIS_PASSWORD).__enter__()
    try:
        redis.cli("SET", "probe:key", "value")
        key = server.ext("EnrollAgent", {"Host": HOST})["AccessKey"]
        env = server.env | {
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
        }
        log = host_dir / "agent.log"
        args = [
            SNOWVAULT, "agent", "run", "--endpoint", server.endpoint, "--host", HOST,
            "--allow-path", str(host_dir), "--region", server.creds["region"],
            "--lease-seconds", "5", "--wait-seconds", "1",
        ]  # fmt: skip
        with log.open("wb") as out:
            procs.append(subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT))
        backup = server.client()
        backup.create_backup_vault(BackupVaultName=VAULT)
        points = {
            "Redis": _agent_point(server, "Redis", "r", redis.url, {"password": REDIS_PASSWORD}),
            "MySQL": _agent_point(
                server,
                "MySQL",
                "m",
                f"mysql://{MYSQL_USER}@127.0.0.1:3306",
                {"password": MYSQL_PASSWORD, "databases": MYSQL_DB},
            ),
        }
        s3 = boto3.client(
            "s3",
            endpoint_url=s3_server,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        bucket = f"svq-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="p/one.txt", Body=b"one")
        points["S3"] = _agent_point(
            server,
            "S3",
            "s",
            f"s3://{bucket}/p",
            {"endpoint": s3_server, "access_key_id": "AK", "secret_access_key": S3_SECRET},
        )
        yield {"server": server, "points": points, "host_dir": host_dir, "log": log, "key": key}
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=20)
        server.stop()
        redis.__exit__(None, None, None)
        _sql(
            f"DROP USER IF EXISTS '{MYSQL_USER}'@'127.0.0.1'; DROP DATABASE IF EXISTS `{MYSQL_DB}`;"
        )
        shutil.rmtree(host_dir, ignore_errors=True)


def _agent_point(
    server: ServerProcess, kind: str, name: str, source: str, props: dict[str, str]
) -> str:
    arn = server.ext(
        "RegisterResource",
        {
            "ResourceType": kind,
            "Name": name,
            "Source": source,
            "Properties": props,
            "WorkerLabel": f"agent:{HOST}",
        },
    )["ResourceArn"]
    backup = server.client()
    job_id = backup.start_backup_job(
        BackupVaultName=VAULT, ResourceArn=arn, IamRoleArn=stories.ROLE
    )["BackupJobId"]
    job = stories.poll(
        lambda: backup.describe_backup_job(BackupJobId=job_id), "State", FINAL, timeout=120
    )
    assert job["State"] == "COMPLETED", job
    return str(job["RecoveryPointArn"])


def _restore(world: dict[str, Any], kind: str, metadata: dict[str, str]) -> dict[str, Any]:
    backup = world["server"].client()
    job_id = backup.start_restore_job(
        RecoveryPointArn=world["points"][kind], Metadata=metadata, IamRoleArn=stories.ROLE
    )["RestoreJobId"]
    return stories.poll(
        lambda: backup.describe_restore_job(RestoreJobId=job_id), "Status", FINAL, timeout=120
    )


def test_a_redis_restore_never_sends_the_resources_password_to_another_server(
    world: dict[str, Any],
) -> None:
    pot = Honeypot("redis")
    try:
        job = _restore(world, "Redis", {"targetUrl": f"redis://127.0.0.1:{pot.port}"})
    finally:
        pot.close()
    assert job["Status"] == "FAILED", job
    assert REDIS_PASSWORD.encode() not in pot.received, bytes(pot.received[:200])


def test_a_mysql_restore_never_logs_in_to_another_server_with_the_resources_password(
    world: dict[str, Any],
) -> None:
    pot = Honeypot("mysql")
    try:
        job = _restore(world, "MySQL", {"targetDsn": f"mysql://{MYSQL_USER}@127.0.0.1:{pot.port}"})
    finally:
        pot.close()
    assert job["Status"] == "FAILED", job
    # not the password in clear; and the login carries no password at all
    assert MYSQL_PASSWORD.encode() not in pot.received, bytes(pot.received[:300])
    assert pot.auth_responses, "the restore never reached the honeypot"
    assert all(a == b"" for a in pot.auth_responses), pot.auth_responses


@pytest.mark.parametrize(
    "metadata",
    [
        {"databases": f'["{MYSQL_DB}`; DROP DATABASE mysql; -- "]'},  # trailing space
        {"databases": MYSQL_DB, "renameTo": "x\x00y"},
        {"databases": MYSQL_DB, "renameTo": "y" * 65},
        {"databases": f"{MYSQL_DB},other", "renameTo": "two"},
    ],
)
def test_malformed_mysql_database_names_are_refused_at_the_call(
    world: dict[str, Any], metadata: dict[str, str]
) -> None:
    backup = world["server"].client()
    before = backup.list_restore_jobs()["RestoreJobs"]
    with pytest.raises(ClientError) as err:
        backup.start_restore_job(
            RecoveryPointArn=world["points"]["MySQL"],
            Metadata={"targetDsn": f"mysql://{MYSQL_USER}@127.0.0.1:3306", **metadata},
            IamRoleArn=stories.ROLE,
        )
    code = err.value.response["Error"]["Code"]
    assert code in {"InvalidParameterValueException", "SerializationException"}, err.value
    assert backup.list_restore_jobs()["RestoreJobs"] == before  # no job exists


HOSTILE_NAMES = [
    "x'; DROP USER root; --",
    "a`b; DROP DATABASE mysql",
    "--defaults-file=/etc/shadow",
    "../../etc",
    'q"uote\\back',
]


def test_hostile_mysql_database_names_are_only_names(world: dict[str, Any]) -> None:
    """A ``renameTo`` with quotes, semicolons, backticks, a leading ``--`` or ``..`` is a
    legal MySQL name: the restore creates exactly that database (quoted as an
    identifier, passed after ``--``), and nothing else on the server changes."""
    for name in HOSTILE_NAMES:
        quoted = "`" + name.replace("`", "``") + "`"
        _sql(f"DROP DATABASE IF EXISTS {quoted};")  # left by an interrupted run
        job = _restore(
            world,
            "MySQL",
            {
                "targetDsn": f"mysql://{MYSQL_USER}@127.0.0.1:3306",
                "databases": MYSQL_DB,
                "renameTo": name,
            },
        )
        try:
            assert job["Status"] == "COMPLETED", (name, job.get("StatusMessage"))
            rows = _sql(f"SELECT COUNT(*) FROM {quoted}.t;")
            assert rows.split() == ["2"], (name, rows)
        finally:
            _sql(f"DROP DATABASE IF EXISTS {quoted};")
    assert _sql("SELECT COUNT(*) FROM mysql.user WHERE user = 'root';").split() != ["0"]
    assert _sql("SHOW DATABASES LIKE 'mysql';").split() == ["mysql"]
    assert not Path("/etc/shadow").is_dir()


def test_a_redis_rdb_restore_outside_the_agents_paths_writes_nothing(
    world: dict[str, Any],
) -> None:
    server: ServerProcess = world["server"]
    host_dir: Path = world["host_dir"]
    escape = host_dir.parent / f"sv-q-escape-{uuid.uuid4().hex[:8]}.rdb"
    catalog = server.data_dir / "catalog.db"
    catalog_bytes = catalog.stat().st_size
    outside = host_dir.parent / f"sv-q-outside-{uuid.uuid4().hex[:8]}.rdb"
    outside.write_bytes(b"kept")
    link = host_dir / f"link-{uuid.uuid4().hex[:8]}.rdb"
    link.symlink_to(outside)  # inside --allow-path, pointing out of it
    with pytest.raises(ClientError) as err:  # `..` out of --allow-path: refused at the call
        server.client().start_restore_job(
            RecoveryPointArn=world["points"]["Redis"],
            Metadata={"targetPath": f"{host_dir}/../{escape.name}", "overwrite": "true"},
            IamRoleArn=stories.ROLE,
        )
    assert err.value.response["Error"]["Code"] == "InvalidParameterValueException"
    for target in (
        str(link),  # a symlink out of --allow-path, overwrite
        str(server.data_dir / "catalog.db"),  # the server's own catalog, overwrite
        str(server.data_dir / "storage" / "x.rdb"),  # into the vaults' storage
    ):
        job = _restore(world, "Redis", {"targetPath": target, "overwrite": "true"})
        assert job["Status"] == "FAILED", (target, job)
        assert "allow-path" in job.get("StatusMessage", ""), job
    assert not escape.exists()
    assert outside.read_bytes() == b"kept" and link.is_symlink()
    outside.unlink()
    assert not (server.data_dir / "storage" / "x.rdb").exists()
    assert catalog.stat().st_size >= catalog_bytes  # still the catalog (it only grows)
    assert server.client().list_backup_vaults()["BackupVaultList"]


def test_another_hosts_agent_is_never_handed_the_restore(world: dict[str, Any]) -> None:
    server: ServerProcess = world["server"]
    other = server.ext("EnrollAgent", {"Host": "other-host"})["AccessKey"]
    backup = server.client()
    job_id = backup.start_restore_job(
        RecoveryPointArn=world["points"]["Redis"],
        Metadata={"targetPath": str(world["host_dir"] / "r.rdb")},
        IamRoleArn=stories.ROLE,
    )["RestoreJobId"]
    status, doc = server.agent_call(other, "AgentClaimJob", {"WaitSeconds": 1})
    assert status == 200 and "Job" not in doc, doc
    for action in ("AgentReadBlobs", "AgentFinishRestore", "AgentHeartbeat"):
        body: dict[str, Any] = {"JobId": job_id}
        if action == "AgentReadBlobs":
            body["BlobIds"] = ["0" * 64]
        status, doc = server.agent_call(other, action, body)
        assert status == 404 or doc.get("__type", "").endswith("ResourceNotFoundException"), (
            action,
            status,
            doc,
        )
    job = stories.poll(
        lambda: backup.describe_restore_job(RestoreJobId=job_id), "Status", FINAL, timeout=120
    )
    assert job["Status"] == "COMPLETED", job  # the right agent did it
    assert (world["host_dir"] / "r.rdb").stat().st_size > 0


def test_an_s3_restore_to_another_endpoint_sends_no_secret(world: dict[str, Any]) -> None:
    """The S3 restore signs with the resource's key pair wherever ``targetEndpoint``
    says (a design choice: docs/resources/s3.md), but SigV4 sends a signature, never the
    secret, and the signature names the honeypot's host: nothing to replay elsewhere."""
    pot = Honeypot("http")
    try:
        job = _restore(
            world,
            "S3",
            {"targetBucket": "anything", "targetEndpoint": f"http://127.0.0.1:{pot.port}"},
        )
    finally:
        pot.close()
    assert job["Status"] == "FAILED", job
    assert pot.received, "the restore never reached the endpoint it was given"
    assert S3_SECRET.encode() not in pot.received
    assert f"host: 127.0.0.1:{pot.port}".encode() in bytes(pot.received).lower()
    for metadata in (
        {"targetBucket": "b", "targetSecretAccessKey": "x"},
        {"targetBucket": "b", "targetEndpoint": "http://user:pw@127.0.0.1:9/"},
    ):
        backup = world["server"].client()
        with pytest.raises(ClientError) as err:
            backup.start_restore_job(
                RecoveryPointArn=world["points"]["S3"], Metadata=metadata, IamRoleArn=stories.ROLE
            )
        assert err.value.response["Error"]["Code"] == "InvalidParameterValueException", metadata
