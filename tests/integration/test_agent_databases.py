"""Every resource type on an agent (issue 13, docs/design/agents.md), against real
servers on 127.0.0.1: a throwaway PostgreSQL cluster (restored into the machine's
127.0.0.1:5432), the MariaDB at 127.0.0.1:3306, throwaway redis-servers, a moto S3
server, SQLite files and a sparse block image. The agent's own code (runner, store,
restore source) runs its plugins here over the agent operations served in-process
(tests/helpers/agent_world.py, bodies through JSON as on the wire); each resource is
registered with ``--host`` (WorkerLabel ``agent:h1``), backed up by the agent, and
restored through the agent, rows (objects, bytes) compared.

Abuse cases: the resource's password reaches the agent in the claim and nowhere else
(not in a log line, a job as DescribeBackupJob/ListBackupJobs see it, or the catalog in
the clear); the agent refuses a database outside its own networks (``allow_networks``)
and a restore target outside its ``allow_paths``, each ending the job FAILED with one
line naming the agent's own flag.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import shutil
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest

from helpers import agent_world
from helpers.access_world import ROLE, World
from helpers.pg_cluster import PgCluster, digest_of
from helpers.redis_server import RedisServer
from snowvault.agent import runner
from snowvault.control import catalog
from snowvault.control.services import backup_jobs, resources, restore_jobs
from snowvault.control.services.base import Caller

PASSWORD = "ag3nt-Pa55-w0rd"
HOST = "h1"


@pytest.fixture
def host_dir() -> Iterator[Path]:
    """The agent host's files: a directory the postgres and nobody users can walk into
    (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="sv-agent-host-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return agent_world.make_world(tmp_path)


class Agent:
    """Host h1's agent: its key's caller, its reach, what it said."""

    def __init__(self, world: World, host_dir: Path, networks: tuple[str, ...] = ()) -> None:
        self.world = world
        self.who = agent_world.agent(world, HOST)
        self.options = runner.Options(
            "in-process", HOST, "us-east-1", "k", "s", (str(host_dir),), allow_networks=networks
        )
        self.lines: list[str] = []

    def with_networks(self, *networks: str) -> Agent:
        other = Agent.__new__(Agent)
        other.world, other.who, other.lines = self.world, self.who, self.lines
        other.options = dataclasses.replace(self.options, allow_networks=networks)
        return other

    def run_next(self) -> str:
        """Claim the next job of the host and run it to its end: its final state."""
        api = agent_world.InProcessApi(self.world, self.who)
        doc = api.call("AgentClaimJob", {})
        assert "Job" in doc, "no job for the agent"
        job = doc["Job"]
        return str(runner.run_job(api, self.options, job, self.lines.append, self.world.clock))  # type: ignore[arg-type]


def _register(
    world: World, rtype: str, name: str, source: str, properties: dict[str, str] | None = None
) -> str:
    row = resources.register(
        world.deps,
        world.root,
        resource_type=rtype,
        name=name,
        source=source,
        properties=properties or {},
        worker_label=f"agent:{HOST}",
    )
    assert PASSWORD not in str(row)
    return str(row["arn"])


def _backup(world: World, agent: Agent, arn: str) -> backup_jobs.BackupJob:
    job = backup_jobs.start(world.deps, world.root, backup_jobs.StartRequest("main", arn, ROLE))
    agent.run_next()
    return backup_jobs.get(world.deps, world.root, job.job_id)


def _restore(world: World, agent: Agent, rp_arn: str, metadata: dict[str, str]) -> Any:
    job = restore_jobs.start(world.deps, world.root, recovery_point_arn=rp_arn, metadata=metadata)
    assert job.worker_label == f"agent:{world.root.account_id}:{HOST}"  # only h1 runs it
    agent.run_next()
    return restore_jobs.get(world.deps, world.root, job.restore_job_id)


def _no_secret_anywhere(world: World, caller: Caller, caplog: pytest.LogCaptureFixture) -> None:
    """The password is in no log record, no job as the API shows them, no catalog row
    in the clear (the catalog file holds it only sealed)."""
    assert PASSWORD not in caplog.text
    listed = backup_jobs.list_jobs(world.deps, caller, catalog.jobs.BackupJobFilters())
    assert listed.items and PASSWORD not in repr(listed.items)
    assert PASSWORD.encode() not in (world.tmp / "catalog.db").read_bytes()


# ------------------------------------------------------------------ PostgreSQL


def test_postgresql_on_an_agent_host_backs_up_and_restores_into_a_server(
    world: World, host_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    work = host_dir / "work"  # the restore's temporary instance lives here, postgres-owned
    work.mkdir(mode=0o755)
    monkeypatch.setattr(tempfile, "tempdir", str(work))
    agent = Agent(world, host_dir)
    with PgCluster() as cluster:
        cluster.create_role("backup", PASSWORD, replication=True)
        cluster.execute("CREATE DATABASE shop")
        cluster.execute(
            "CREATE TABLE items (id int PRIMARY KEY, name text);"
            "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 3000) g;",
            db="shop",
        )
        arn = _register(world, "PostgreSQL", "shop-db", cluster.dsn("backup", PASSWORD))

        # the agent's own network rule: 127.0.0.1 is outside 10.0.0.0/8, refused, one line
        job = backup_jobs.start(world.deps, world.root, backup_jobs.StartRequest("main", arn, ROLE))
        assert agent.with_networks("10.0.0.0/8").run_next() == "FAILED"
        refused = backup_jobs.get(world.deps, world.root, job.job_id)
        message = refused.status_message or ""
        assert "not in an allowed network" in message and "--allow-network" in message
        assert "\n" not in message and PASSWORD not in message

        done = _backup(world, agent, arn)
        assert done.state == "COMPLETED", (done.status_message, agent.lines)
        name = f"sv_agent_{uuid.uuid4().hex[:8]}"
        metadata = {
            "targetDsn": "postgresql://postgres@127.0.0.1:5432",
            "databases": "shop",
            "renameTo": name,
        }
        try:
            restore = _restore(world, agent, done.recovery_point_arn, metadata)
            assert restore.status == "COMPLETED", (restore.status_message, agent.lines)
            conninfo = f"host=127.0.0.1 port=5432 user=postgres dbname={name}"
            assert digest_of(conninfo, "items") == cluster.digest("shop", "items")
        finally:
            with psycopg.connect("host=127.0.0.1 port=5432 user=postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    _no_secret_anywhere(world, world.root, caplog)
    assert not any(PASSWORD in line for line in agent.lines)


# ----------------------------------------------------------------------- MySQL


def _sql(statement: str) -> str:
    argv = ["mariadb", "-h127.0.0.1", "-P3306", "-uroot", "-N", "-B"]
    done = subprocess.run(argv, input=statement.encode(), capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.decode()


def test_mysql_on_an_agent_host_backs_up_and_restores_under_a_new_name(
    world: World, host_dir: Path
) -> None:
    db = f"sva_{os.getpid()}"
    _sql(f"DROP DATABASE IF EXISTS {db}; DROP DATABASE IF EXISTS {db}_r")
    _sql(
        f"CREATE DATABASE {db}; CREATE TABLE {db}.t (id INT PRIMARY KEY, body VARCHAR(64));"
        f" INSERT INTO {db}.t VALUES " + ",".join(f"({i}, 'row {i}')" for i in range(1, 801))
    )
    agent = Agent(world, host_dir)
    try:
        arn = _register(world, "MySQL", "m", "mysql://root@127.0.0.1:3306", {"databases": db})
        done = _backup(world, agent, arn)
        assert done.state == "COMPLETED", (done.status_message, agent.lines)
        metadata = {
            "targetDsn": "mysql://root@127.0.0.1:3306",
            "databases": db,
            "renameTo": f"{db}_r",
        }
        restore = _restore(world, agent, done.recovery_point_arn, metadata)
        assert restore.status == "COMPLETED", (restore.status_message, agent.lines)
        rows = "SELECT id, body FROM {}.t ORDER BY id"
        assert _sql(rows.format(f"{db}_r")) == _sql(rows.format(db))
        assert len(_sql(rows.format(f"{db}_r")).splitlines()) == 800
    finally:
        _sql(f"DROP DATABASE IF EXISTS {db}; DROP DATABASE IF EXISTS {db}_r")


# --------------------------------------------------------------- Redis, SQLite


def test_redis_with_a_password_and_sqlite_on_an_agent_host(
    world: World, host_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    agent = Agent(world, host_dir)
    with RedisServer(password=PASSWORD) as source, RedisServer() as target:
        for n in range(200):
            source.cli("SET", f"key:{n}", f"value {n}")
        source.cli("RPUSH", "list", "a", "b", "c")
        arn = _register(world, "Redis", "cache", source.url, {"password": PASSWORD})
        done = _backup(world, agent, arn)
        assert done.state == "COMPLETED", (done.status_message, agent.lines)
        far = {"targetUrl": "redis://10.255.255.1:6379"}  # a server outside the agent's reach
        refused = _restore(world, agent, done.recovery_point_arn, far)
        assert refused.status == "FAILED" and "--allow-network" in refused.status_message
        restore = _restore(world, agent, done.recovery_point_arn, {"targetUrl": target.url})
        assert restore.status == "COMPLETED", (restore.status_message, agent.lines)
        assert target.cli("GET", "key:199").strip() == "value 199"
        assert target.cli("DBSIZE").strip() == "201"
        assert target.cli("LRANGE", "list", "0", "-1").split() == ["a", "b", "c"]
    _no_secret_anywhere(world, world.root, caplog)

    path = host_dir / "app.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"row {i}") for i in range(500)])
    conn.close()
    arn = _register(world, "SQLite", "app", str(path))
    done = _backup(world, agent, arn)
    assert done.state == "COMPLETED", (done.status_message, agent.lines)
    outside = world.tmp / "server-side.sqlite"  # not under the agent's --allow-path
    refused = _restore(world, agent, done.recovery_point_arn, {"targetPath": str(outside)})
    assert refused.status == "FAILED" and not outside.exists()
    assert "not under an allowed path" in refused.status_message
    assert "--allow-path" in refused.status_message and "\n" not in refused.status_message
    restored = host_dir / "restored.sqlite"
    restore = _restore(world, agent, done.recovery_point_arn, {"targetPath": str(restored)})
    assert restore.status == "COMPLETED", (restore.status_message, agent.lines)
    query = "SELECT id, body FROM t ORDER BY id"
    with sqlite3.connect(path) as a, sqlite3.connect(restored) as b:
        assert a.execute(query).fetchall() == b.execute(query).fetchall()
    a.close()
    b.close()


def test_the_claim_carries_the_resources_own_secrets_and_never_anothers(
    world: World, host_dir: Path
) -> None:
    agent = Agent(world, host_dir)
    other = agent_world.agent(world, "h2")
    arn = _register(world, "Redis", "cache", f"redis://:{PASSWORD}@127.0.0.1:6390")
    backup_jobs.start(world.deps, world.root, backup_jobs.StartRequest("main", arn, ROLE))
    assert agent_world.InProcessApi(world, other).call("AgentClaimJob", {}) == {}
    doc = agent_world.InProcessApi(world, agent.who).call("AgentClaimJob", {})["Job"]
    assert doc["Secrets"] == {"password": PASSWORD} and PASSWORD not in doc["Source"]
    assert doc["ResourceType"] == "Redis" and doc["ResourceName"] == "cache"
    with catalog.db.read_transaction(world.deps.engine) as conn:
        row = catalog.resources.get(conn, arn)
    assert PASSWORD not in repr(row)


# ------------------------------------------------------------ S3, BlockDevice


def test_s3_and_a_block_image_on_an_agent_host(
    world: World, host_dir: Path, s3_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    agent = Agent(world, host_dir)
    admin = boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    name = f"agent-{uuid.uuid4().hex[:8]}"
    admin.create_bucket(Bucket=name)
    admin.create_bucket(Bucket=f"{name}-r")
    body = random.Random(5).randbytes(300_000)
    admin.put_object(Bucket=name, Key="data/a.json", Body=b'{"a": 1}', Metadata={"o": "ana"})
    admin.put_object(Bucket=name, Key="data/dir/b.bin", Body=body)
    properties = {"endpoint": s3_server, "access_key_id": "testing", "secret_access_key": PASSWORD}
    # moto takes any secret; the sealed one must still be the one the agent signs with
    arn = _register(world, "S3", "bucket", f"s3://{name}/data", properties)
    done = _backup(world, agent, arn)
    assert done.state == "COMPLETED", (done.status_message, agent.lines)
    restore = _restore(
        world, agent, done.recovery_point_arn, {"targetBucket": f"{name}-r", "targetPrefix": "r"}
    )
    assert restore.status == "COMPLETED", (restore.status_message, agent.lines)
    got = admin.get_object(Bucket=f"{name}-r", Key="r/dir/b.bin")
    assert got["Body"].read() == body
    assert admin.head_object(Bucket=f"{name}-r", Key="r/a.json")["Metadata"] == {"o": "ana"}
    _no_secret_anywhere(world, world.root, caplog)

    image = host_dir / "disk.img"
    with image.open("wb") as fh:  # sparse: two data runs around a hole
        fh.write(random.Random(6).randbytes(700_000))
        fh.seek(4 * 1024 * 1024)
        fh.write(b"tail" * 1000)
    arn = _register(world, "BlockDevice", "disk", str(image))
    done = _backup(world, agent, arn)
    assert done.state == "COMPLETED", (done.status_message, agent.lines)
    target = host_dir / "disk-restored.img"
    restore = _restore(world, agent, done.recovery_point_arn, {"targetPath": str(target)})
    assert restore.status == "COMPLETED", (restore.status_message, agent.lines)
    assert target.read_bytes() == image.read_bytes()
