"""A PostgreSQL point restored through an agent, from the attacker's side (helper Q's
probe): a `snowvault server`, `snowvault agent run` as its own process, a throwaway
cluster whose backup role needs its password (scram over TCP), and a fake PostgreSQL
server on the agent host's loopback that asks for the password in clear.

The abuse case: a principal allowed StartRestoreJob names ``targetDsn`` with the
resource's own user at another port; whoever listens there (any user of that host, the
agent's --allow-network allows loopback) asks for a cleartext password. The resource's
sealed password goes only to the resource's own server and user
(``postgresql._target_password``): the fake server gets the startup message and no
password, and the job ends FAILED. A ``renameTo`` with NUL or over 63 bytes is refused at
the call; one with quotes and semicolons is only a name (that database is created, the
others stay); a ``validationQuery`` with a second statement never runs on the target.
"""

from __future__ import annotations

import contextlib
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

import psycopg
import pytest
from botocore.exceptions import ClientError

from helpers import stories
from helpers.listener import Listener
from helpers.pg_cluster import PgCluster
from helpers.sv_server import SNOWVAULT, new_server

HOST = "pg-probe"
PASSWORD = "pg-S3cret-never-sent-away"
FINAL = {"COMPLETED", "FAILED", "ABORTED", "EXPIRED", "PARTIAL"}


class FakePostgres(Listener):
    """Answers an SSLRequest with 'N' and a StartupMessage with
    AuthenticationCleartextPassword; records every byte the client sends."""

    def talk(self, conn: socket.socket) -> None:
        while True:
            data = self.read(conn)
            if not data:
                return
            if data[4:8] == struct.pack("!I", 80877103):  # SSLRequest
                conn.sendall(b"N")
            elif data[4:8] == struct.pack("!I", 196608):  # StartupMessage
                conn.sendall(b"R" + struct.pack("!II", 8, 3))  # cleartext password, please
            else:  # a PasswordMessage, if the client had one
                conn.sendall(b"E" + struct.pack("!I", 4 + 22) + b"SFATAL\0C28P01\0Mno\0\0\0")
                return


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    host_dir = Path(tempfile.mkdtemp(prefix="sv-q-agentpg-"))
    os.chmod(host_dir, 0o755)
    (host_dir / "tmp").mkdir(mode=0o755)
    server = new_server(tmp_path_factory)
    server.init(allow_paths=(str(host_dir),), lease_seconds=10, sweep_seconds=1, poll_seconds=0.2)
    server.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with PgCluster() as pg:
            pg.create_role("backup", PASSWORD, replication=True)
            pg.execute("CREATE DATABASE shop")
            pg.execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)", db="shop")
            pg.execute("CHECKPOINT")
            key = server.ext("EnrollAgent", {"Host": HOST})["AccessKey"]
            env = server.env | {
                "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
                "TMPDIR": str(host_dir / "tmp"),  # a temporary instance: walkable by nobody
            }
            args = [
                SNOWVAULT, "agent", "run", "--endpoint", server.endpoint, "--host", HOST,
                "--allow-path", str(host_dir), "--region", server.creds["region"],
                "--lease-seconds", "5", "--wait-seconds", "1",
            ]  # fmt: skip
            with (host_dir / "agent.log").open("wb") as out:
                procs.append(subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT))
            arn = server.ext(
                "RegisterResource",
                {
                    "ResourceType": "PostgreSQL",
                    "Name": "pg",
                    "Source": pg.dsn("backup"),
                    "Properties": {"password": PASSWORD},
                    "WorkerLabel": f"agent:{HOST}",
                },
            )["ResourceArn"]
            backup = server.client()
            backup.create_backup_vault(BackupVaultName="agentpg")
            job_id = backup.start_backup_job(
                BackupVaultName="agentpg", ResourceArn=arn, IamRoleArn=stories.ROLE
            )["BackupJobId"]
            job = stories.poll(
                lambda: backup.describe_backup_job(BackupJobId=job_id), "State", FINAL, timeout=180
            )
            assert job["State"] == "COMPLETED", job.get("StatusMessage")
            yield {"server": server, "rp": job["RecoveryPointArn"], "pg": pg}
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=20)
        server.stop()
        shutil.rmtree(host_dir, ignore_errors=True)


def _restore(world: dict[str, Any], metadata: dict[str, str]) -> dict[str, Any]:
    backup = world["server"].client()
    job_id = backup.start_restore_job(
        RecoveryPointArn=world["rp"], Metadata=metadata, IamRoleArn=stories.ROLE
    )["RestoreJobId"]
    return stories.poll(
        lambda: backup.describe_restore_job(RestoreJobId=job_id), "Status", FINAL, timeout=180
    )


def test_a_restore_to_another_port_gets_no_password(world: dict[str, Any]) -> None:
    fake = FakePostgres()
    try:
        job = _restore(
            world,
            {
                "targetDsn": f"postgresql://backup@127.0.0.1:{fake.port}",
                "databases": "shop",
                "renameTo": "stolen",
            },
        )
    finally:
        fake.close()
    assert job["Status"] == "FAILED", job
    assert fake.received, "the restore never reached the server it was given"
    assert PASSWORD.encode() not in fake.received
    assert PASSWORD not in job.get("StatusMessage", "")


@pytest.mark.parametrize("name", ["a\x00b", "x" * 64])
def test_a_hostile_rename_is_refused_at_the_call(world: dict[str, Any], name: str) -> None:
    pg: PgCluster = world["pg"]
    with pytest.raises(ClientError) as err:
        world["server"].client().start_restore_job(
            RecoveryPointArn=world["rp"],
            Metadata={
                "targetDsn": f"postgresql://backup@127.0.0.1:{pg.port}",
                "databases": "shop",
                "renameTo": name,
            },
            IamRoleArn=stories.ROLE,
        )
    code = err.value.response["Error"]["Code"]
    assert code in {"InvalidParameterValueException", "SerializationException"}, code


def test_a_second_statement_in_the_check_never_runs_on_the_target(world: dict[str, Any]) -> None:
    """A target role without superuser (CREATEDB only) gets the caller's check; it is
    one prepared statement, so ``SELECT 1; CREATE TABLE ...`` fails as a whole."""
    admin = "host=127.0.0.1 port=5432 user=postgres"  # the machine's server, trust
    role, name = f"svq_{uuid.uuid4().hex[:8]}", f"q_{uuid.uuid4().hex[:8]}"
    ident = psycopg.sql.Identifier
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("CREATE ROLE {} LOGIN CREATEDB").format(ident(role)))
    try:
        job = _restore(
            world,
            {
                "targetDsn": f"postgresql://{role}@127.0.0.1:5432",
                "databases": "shop",
                "renameTo": name,
                "validationQuery": "SELECT 1; CREATE TABLE public.escaped (id int)",
            },
        )
        message = job.get("StatusMessage", "")
        assert job["Status"] == "FAILED" and "multiple commands" in message, job
        with contextlib.suppress(psycopg.OperationalError):  # gone if the job dropped it
            with psycopg.connect(f"{admin} dbname={name}") as conn:
                found = conn.execute("SELECT to_regclass('public.escaped')::text").fetchone()
            assert found == (None,), found
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {}").format(ident(name)))
            conn.execute(psycopg.sql.SQL("DROP ROLE IF EXISTS {}").format(ident(role)))


def test_a_quoted_rename_is_only_a_name(world: dict[str, Any]) -> None:
    admin = "host=127.0.0.1 port=5432 user=postgres"  # the machine's server, trust
    name = f'x"; DROP DATABASE shop; -- {uuid.uuid4().hex[:6]}'
    try:
        job = _restore(
            world,
            {
                "targetDsn": "postgresql://postgres@127.0.0.1:5432",
                "databases": "shop",
                "renameTo": name,
            },
        )
        assert job["Status"] == "COMPLETED", job.get("StatusMessage")
        with psycopg.connect(admin, autocommit=True) as conn:
            names = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        assert {name, "postgres"} <= names
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {}").format(
                psycopg.sql.Identifier(name)))  # fmt: skip
