"""PostgreSQL restore Metadata ``validationQuery`` from the attacker's side (helper Q's
probe), through a real server and a throwaway cluster.

The abuse case: a principal allowed StartRestoreJob on a PostgreSQL point (any tenant,
for a point of its own) chooses ``validationQuery``. The plugin runs it
(``plugins/postgresql.py``: ``PostgreSQL.validate_restore`` -> ``_run_query``) as the
cluster's bootstrap superuser in the temporary instance of a ``targetDirectory``
restore, and as the resource's own role (with its sealed password) on a ``targetDsn``
restore into the resource's server. ``SET TRANSACTION READ ONLY`` does not confine it:

- ``COPY ... TO PROGRAM 'cmd'`` is allowed in a read-only transaction and runs ``cmd``
  as the OS user of the instance: on a ``targetDirectory`` restore that is the sandbox
  user on the host that restores (the server's host, or an agent's): ``nobody`` when
  the server runs as root, **the server's own user otherwise** (``pg_tools.sandbox_user``),
  who can read ``root.key`` and the catalog;
- the query is sent as one simple-protocol string, so ``COMMIT; <any write>; BEGIN``
  leaves the read-only transaction and writes as that role.

Fixed in plugins/postgresql.py (``_run_query``, ``_make_checker``, ``_host_reach``): the
query is one prepared statement, and runs as a throwaway non-superuser login role in the
temporary instance, or (targetDsn) only as a role that cannot reach the database host.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from helpers import stories
from helpers.pg_cluster import PgCluster
from helpers.stories import ROLE
from helpers.sv_server import new_server

PASSWORD = "pr0be-Pa55word"
FINAL = {"COMPLETED", "FAILED", "ABORTED", "EXPIRED", "PARTIAL"}
TARGET = "postgresql://postgres@127.0.0.1:5432"  # trust: the resource's own server below


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    host_dir = Path(tempfile.mkdtemp(prefix="sv-q-pgprobe-"))
    os.chmod(host_dir, 0o755)
    drop = host_dir / "drop"  # where a command run by the restore could write
    drop.mkdir()
    os.chmod(drop, 0o1777)
    server = new_server(tmp_path_factory)
    server.init(allow_paths=(str(host_dir),), lease_seconds=30, sweep_seconds=1, poll_seconds=0.2)
    server.extra_env = {"TMPDIR": str(host_dir)}  # the temporary instance: walkable
    server.start()
    try:
        with PgCluster() as pg:
            pg.create_role("backup", PASSWORD, replication=True)
            pg.execute("CREATE DATABASE shop")
            pg.execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)", db="shop")
            pg.execute("CHECKPOINT")
            arn = server.ext(
                "RegisterResource",
                {
                    "ResourceType": "PostgreSQL",
                    "Name": "pg-probe",
                    "Source": pg.dsn("backup"),
                    "Properties": {"password": PASSWORD},
                },
            )["ResourceArn"]
            backup = server.client()
            backup.create_backup_vault(BackupVaultName="pgq")
            job_id = backup.start_backup_job(
                BackupVaultName="pgq", ResourceArn=arn, IamRoleArn=ROLE
            )["BackupJobId"]
            job = stories.poll(
                lambda: backup.describe_backup_job(BackupJobId=job_id), "State", FINAL, timeout=180
            )
            assert job["State"] == "COMPLETED", job.get("StatusMessage")
            yield {"server": server, "rp": job["RecoveryPointArn"], "host_dir": host_dir}
    finally:
        server.stop()
        shutil.rmtree(host_dir, ignore_errors=True)


def _restore(world: dict[str, Any], metadata: dict[str, str]) -> dict[str, Any]:
    backup = world["server"].client()
    job_id = backup.start_restore_job(
        RecoveryPointArn=world["rp"], Metadata=metadata, IamRoleArn=ROLE
    )["RestoreJobId"]
    return stories.poll(
        lambda: backup.describe_restore_job(RestoreJobId=job_id), "Status", FINAL, timeout=180
    )


def test_a_validation_query_runs_no_command_on_the_restoring_host(
    world: dict[str, Any],
) -> None:
    marker = world["host_dir"] / "drop" / f"ran-{uuid.uuid4().hex[:8]}"
    query = f"COPY (SELECT current_user) TO PROGRAM 'id -un > {marker}'"
    target = world["host_dir"] / f"restored-{uuid.uuid4().hex[:8]}"
    job = _restore(world, {"targetDirectory": str(target), "validationQuery": query})
    ran_as = marker.read_text().strip() if marker.exists() else None
    assert ran_as is None, f"the restore ran a shell command as {ran_as!r} ({job['Status']})"


def test_a_validation_query_cannot_write_to_the_target_server(world: dict[str, Any]) -> None:
    name = f"sv_q_probe_{uuid.uuid4().hex[:8]}"
    escape = f"sv_q_escaped_{uuid.uuid4().hex[:8]}"
    query = f"COMMIT; CREATE TABLE public.{escape} (id int); BEGIN"
    admin = "host=127.0.0.1 port=5432 user=postgres"
    try:
        _restore(
            world,
            {"targetDsn": TARGET, "databases": "shop", "renameTo": name, "validationQuery": query},
        )
        with psycopg.connect(f"{admin} dbname={name}", autocommit=True) as conn:
            found = conn.execute("SELECT to_regclass(%s)", (f"public.{escape}",)).fetchone()
        assert found == (None,), f"the check created table {escape} on the target"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {}").format(
                psycopg.sql.Identifier(name)))  # fmt: skip
