"""Database resources on an agent host through real processes (issue 13,
docs/design/agents.md): a `snowvault server`, `snowvault agent run` as its own process,
a throwaway PostgreSQL cluster whose backup role needs its password, and an SQLite file.

- Registration with ``resource add <type> --host``: the server judges the form only.
- The agent's network rule: started with ``--allow-network 10.0.0.0/8`` (no loopback),
  it refuses the cluster on 127.0.0.1 and the job ends FAILED with one line naming the
  flag; restarted with the default rule, it backs the cluster up with the password the
  claim carried over HTTP, and StartRestoreJob {targetDsn, renameTo} restores the
  database into the machine's 127.0.0.1:5432 through the agent, rows compared.
- The password is nowhere else: not in the server's log, not in DescribeBackupJob or
  ListBackupJobs, not in any file of the server's data directory in the clear (the
  trail, the catalog, the store), nor in the agent's own log.
- An SQLite database on the agent host is backed up and restored there through
  StartRestoreJob, rows compared.
"""

from __future__ import annotations

import gzip
import os
import shutil
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from helpers import stories
from helpers.pg_cluster import PgCluster, digest_of
from helpers.sv_server import SNOWVAULT, ServerProcess, new_server

VAULT = "fleet"
HOST = "db-1"
PASSWORD = "pr0cess-Pa55-w0rd"
ROLE = stories.ROLE
FINAL = {"COMPLETED", "FAILED", "ABORTED", "EXPIRED", "PARTIAL"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    host_dir = Path(tempfile.mkdtemp(prefix="sv-agent-proc-"))
    os.chmod(host_dir, 0o755)
    (host_dir / "tmp").mkdir(mode=0o755)
    server = new_server(tmp_path_factory)
    server.init(allow_paths=(str(host_dir),), lease_seconds=10, sweep_seconds=1, poll_seconds=0.2)
    server.start()
    agents: list[subprocess.Popen[bytes]] = []
    try:
        yield {"server": server, "host_dir": host_dir, "agents": agents, "tmp": host_dir / "tmp"}
    finally:
        for proc in agents:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=20)
        server.stop()
        shutil.rmtree(host_dir, ignore_errors=True)


def _agent(world: dict[str, Any], key: dict[str, str], *flags: str) -> tuple[Any, Path]:
    server: ServerProcess = world["server"]
    log = world["host_dir"] / f"agent-{len(world['agents'])}.log"
    env = server.env | {
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
        "TMPDIR": str(world["tmp"]),  # a PostgreSQL restore's temporary instance: postgres-walkable
    }
    args = [
        SNOWVAULT, "agent", "run", "--endpoint", server.endpoint, "--host", HOST,
        "--allow-path", str(world["host_dir"]), "--region", server.creds["region"],
        "--lease-seconds", "5", "--wait-seconds", "1", *flags,
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    world["agents"].append(proc)
    return proc, log


def _job(backup: Any, job_id: str) -> dict[str, Any]:
    doc: dict[str, Any] = backup.describe_backup_job(BackupJobId=job_id)
    return doc


def _files_holding(root: Path, secret: bytes) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        if secret in data:
            found.append(str(path))
    return found


def test_database_resources_on_an_agent_host(world: dict[str, Any]) -> None:
    server: ServerProcess = world["server"]
    host_dir: Path = world["host_dir"]
    backup = server.client()
    backup.create_backup_vault(BackupVaultName=VAULT)
    key = stories.sv_json(server, "agent", "enroll", "--host", HOST)["AccessKey"]
    with PgCluster() as cluster:
        cluster.create_role("backup", PASSWORD, replication=True)
        cluster.execute("CREATE DATABASE shop")
        cluster.execute(
            "CREATE TABLE t (id int PRIMARY KEY, body text);"
            "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 500) g",
            db="shop",
        )
        pg = stories.sv_json(
            server, "resource", "add", "postgresql", "--dsn", cluster.dsn("backup", PASSWORD),
            "--host", HOST, "--name", "pg",
        )["ResourceArn"]  # fmt: skip

        narrow, narrow_log = _agent(world, key, "--allow-network", "10.0.0.0/8")
        job = backup.start_backup_job(
            BackupVaultName=VAULT, ResourceArn=pg, IamRoleArn=stories.ROLE
        )
        refused = stories.poll(lambda: _job(backup, job["BackupJobId"]), "State", FINAL)
        message = refused.get("StatusMessage", "")
        assert refused["State"] == "FAILED", (refused, narrow_log.read_text())
        assert "not in an allowed network" in message and "--allow-network" in message
        assert "\n" not in message and PASSWORD not in message
        narrow.terminate()
        narrow.wait(timeout=60)

        _proc, log = _agent(world, key)
        job = backup.start_backup_job(
            BackupVaultName=VAULT, ResourceArn=pg, IamRoleArn=stories.ROLE
        )
        done = stories.poll(lambda: _job(backup, job["BackupJobId"]), "State", FINAL)
        assert done["State"] == "COMPLETED", (done, log.read_text())
        listed = backup.list_backup_jobs(ByResourceArn=pg)["BackupJobs"]
        assert len(listed) == 2 and PASSWORD not in repr(listed) + repr(done)
        name = f"sv_proc_{uuid.uuid4().hex[:8]}"
        metadata = {
            "targetDsn": "postgresql://postgres@127.0.0.1:5432",
            "databases": "shop",
            "renameTo": name,
        }
        try:
            restore = stories.restored_with(backup, done["RecoveryPointArn"], metadata)
            assert restore["Status"] == "COMPLETED", (restore, log.read_text())
            conninfo = f"host=127.0.0.1 port=5432 user=postgres dbname={name}"
            assert digest_of(conninfo, "t") == cluster.digest("shop", "t")
        finally:
            with psycopg.connect("host=127.0.0.1 port=5432 user=postgres", autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{name}"')

    db = host_dir / "app.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"row {i}") for i in range(300)])
    conn.close()
    lite = stories.sv_json(
        server, "resource", "add", "sqlite", "--path", str(db), "--host", HOST, "--name", "app"
    )["ResourceArn"]
    done = stories.backed_up(backup, VAULT, lite)
    assert done["State"] == "COMPLETED", (done, log.read_text())
    target = host_dir / "restored.sqlite"
    restore = stories.restored(backup, done["RecoveryPointArn"], target)
    assert restore["Status"] == "COMPLETED", (restore, log.read_text())
    query = "SELECT id, body FROM t ORDER BY id"
    with sqlite3.connect(db) as a, sqlite3.connect(target) as b:
        assert a.execute(query).fetchall() == b.execute(query).fetchall()
    a.close()
    b.close()

    server.stop()  # every trail record filed
    secret = PASSWORD.encode()
    assert secret not in server.log.read_bytes()
    assert _files_holding(server.data_dir, b"AgentClaimJob")  # the trail is read here
    assert _files_holding(server.data_dir, secret) == []
    assert secret not in log.read_bytes() and secret not in narrow_log.read_bytes()
