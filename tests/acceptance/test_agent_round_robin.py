"""An agent behind the scale-out's one endpoint (issue 13, docs/design/agents.md "Any
server answers"): two `snowvault server` processes on one PostgreSQL catalog and a moto
S3 store, a round-robin proxy in front (tests/helpers/fleet.py), and one `snowvault
agent run` process whose connections land on either server. A directory with large
incompressible files (chunks at the agent cap, each sealed one alone in its request)
and small ones, and an SQLite database, both registered with ``--host``, are backed up
by the agent and restored through it byte for byte and row for row, and no server
logged a 5xx or a traceback. Which server answers which call is the proxy's and the
agent's connection reuse's business (keep-alive), so this test does not count it; the
alternation itself is proven call by call in tests/unit/services/test_agent_any_server.py.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import stories
from helpers.fleet import Fleet

VAULT = "round-robin"
HOST = "rr-1"
FINAL_BACKUP = {"COMPLETED", "FAILED", "ABORTED", "EXPIRED", "PARTIAL"}
FINAL_RESTORE = {"COMPLETED", "FAILED", "ABORTED"}


@pytest.fixture
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with Fleet.start(
        tmp_path_factory, servers=2, lease_seconds=8, sweep_seconds=1, poll_seconds=0.2
    ) as fleet:
        fleet.front.client().create_backup_vault(BackupVaultName=VAULT)
        yield fleet


def _register(fleet: Fleet, rtype: str, name: str, source: str) -> str:
    body = {"ResourceType": rtype, "Name": name, "Source": source, "WorkerLabel": f"agent:{HOST}"}
    return str(fleet.front.ext("RegisterResource", body)["ResourceArn"])


def _backed_up(backup: Any, arn: str) -> dict[str, Any]:
    job = backup.start_backup_job(BackupVaultName=VAULT, ResourceArn=arn, IamRoleArn=stories.ROLE)
    return stories.poll(
        lambda: backup.describe_backup_job(BackupJobId=job["BackupJobId"]),
        "State",
        FINAL_BACKUP,
        timeout=120,
    )


def _restored(backup: Any, rp_arn: str, target: Path) -> dict[str, Any]:
    job = backup.start_restore_job(
        RecoveryPointArn=rp_arn, Metadata={"targetPath": str(target)}, IamRoleArn=stories.ROLE
    )
    return stories.poll(
        lambda: backup.describe_restore_job(RestoreJobId=job["RestoreJobId"]),
        "Status",
        FINAL_RESTORE,
        timeout=120,
    )


def test_an_agent_behind_a_round_robin_endpoint(fleet: Fleet) -> None:
    host = fleet.tmp / "host"
    files = host / "files"
    (files / "small").mkdir(parents=True)
    rng = random.Random(13)
    for n in range(2):
        (files / f"big{n}.bin").write_bytes(rng.randbytes(6 * 1024 * 1024))
    for n in range(60):
        (files / "small" / f"f{n}.txt").write_bytes(rng.randbytes(2000))
    db = host / "app.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"row {i}") for i in range(400)])
    conn.close()
    directory = _register(fleet, "Directory", "files", str(files))
    sqlite = _register(fleet, "SQLite", "app", str(db))
    agent = fleet.agent(HOST, allow=host, lease_seconds=10)
    backup = fleet.front.client()

    done = _backed_up(backup, directory)
    assert done["State"] == "COMPLETED", (done, agent.log.read_text())
    target = host / "restored"
    restore = _restored(backup, done["RecoveryPointArn"], target)
    assert restore["Status"] == "COMPLETED", (restore, agent.log.read_text())
    for path in files.rglob("*"):
        if path.is_file():
            assert (target / path.relative_to(files)).read_bytes() == path.read_bytes()

    done = _backed_up(backup, sqlite)
    assert done["State"] == "COMPLETED", (done, agent.log.read_text())
    copy = host / "restored.sqlite"
    restore = _restored(backup, done["RecoveryPointArn"], copy)
    assert restore["Status"] == "COMPLETED", (restore, agent.log.read_text())
    query = "SELECT id, body FROM t ORDER BY id"
    with sqlite3.connect(db) as a, sqlite3.connect(copy) as b:
        assert a.execute(query).fetchall() == b.execute(query).fetchall()
    a.close()
    b.close()

    time.sleep(0.5)  # the last request lines written
    assert fleet.server_errors() == []
