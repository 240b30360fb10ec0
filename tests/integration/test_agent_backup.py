"""An agent backs up a directory the server may not read (issue 13,
docs/design/agents.md): a real server, `snowvault agent run` as a separate process with
its own --allow-path, the resource registered with `--host`; the point restores through
StartRestoreJob onto the agent's host (into a directory the server may not write),
byte for byte, and a target outside the agent's --allow-path fails with one line; a
second backup uploads nothing new; an agent killed mid-job loses its lease, the job is
retried (never RUNNING forever) and a restarted agent finishes it without uploading
again what the first attempt stored.
"""

from __future__ import annotations

import filecmp
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from helpers import stories
from helpers.sv_server import SNOWVAULT, ServerProcess, move_clock, new_server

VAULT = "fleet"
HOST = "web-1"
_INVALID = {"InvalidParameterValueException", "ValidationException"}
FINAL = {"COMPLETED", "FAILED", "ABORTED", "EXPIRED", "PARTIAL"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("agents").resolve()
    server_area = base / "server-area"
    agent_area = base / "agent-host"
    server_area.mkdir()
    agent_area.mkdir()
    server = new_server(tmp_path_factory)
    server.init(
        allow_paths=(str(server_area),), lease_seconds=10, sweep_seconds=1, poll_seconds=0.2
    )
    server.start()
    agents: list[subprocess.Popen[bytes]] = []
    try:
        yield {
            "server": server,
            "server_area": server_area,
            "agent_area": agent_area,
            "agents": agents,
            "base": base,
        }
    finally:
        for proc in agents:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=20)
        server.stop()


def _start_agent(world: dict[str, Any], key: dict[str, str], n: int) -> tuple[Any, Path]:
    server: ServerProcess = world["server"]
    log = world["base"] / f"agent-{n}.log"
    env = server.env | {
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
    }
    args = [
        SNOWVAULT, "agent", "run", "--endpoint", server.endpoint, "--host", HOST,
        "--allow-path", str(world["agent_area"]), "--region", server.creds["region"],
        "--lease-seconds", "5", "--wait-seconds", "1",
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    world["agents"].append(proc)
    return proc, log


def _packs(server: ServerProcess) -> int:
    return sum(1 for p in server.data_dir.rglob("*") if p.parent.parent.name == "data")


def _job(backup: Any, job_id: str) -> dict[str, Any]:
    doc: dict[str, Any] = backup.describe_backup_job(BackupJobId=job_id)
    return doc


def _wait(backup: Any, job_id: str, states: set[str], timeout: float = 90) -> dict[str, Any]:
    return stories.poll(lambda: _job(backup, job_id), "State", states, timeout)


def test_an_agent_backs_up_what_the_server_may_not_read(world: dict[str, Any]) -> None:
    server: ServerProcess = world["server"]
    backup = server.client()
    backup.create_backup_vault(BackupVaultName=VAULT)
    source: Path = world["agent_area"] / "files"
    source.mkdir()
    stories.make_tree(source, seed=13, files=12, size=40_000)
    (source / "link").symlink_to("d0")

    # the server itself may not read it: without --host the registration is refused
    refused = stories.sv(server, "resource", "add", "directory", str(source), "--name", "x",
                         ok=False)  # fmt: skip
    assert refused.returncode != 0 and "not under an allowed path" in refused.stderr
    key = stories.sv_json(server, "agent", "enroll", "--host", HOST)["AccessKey"]
    arn = stories.sv_json(
        server, "resource", "add", "directory", str(source), "--host", HOST, "--name", "files"
    )["ResourceArn"]

    # no agent yet: the job waits (the server's own worker never takes it)
    job = backup.start_backup_job(BackupVaultName=VAULT, ResourceArn=arn, IamRoleArn=stories.ROLE)
    time.sleep(1.5)
    assert _job(backup, job["BackupJobId"])["State"] == "CREATED"

    agent, log = _start_agent(world, key, 1)
    done = _wait(backup, job["BackupJobId"], FINAL)
    assert done["State"] == "COMPLETED", (done, log.read_text())
    rp = done["RecoveryPointArn"]

    # the restore runs on the agent's host, into a directory the server may not write
    target = world["agent_area"] / "restored"
    refused = stories.restored(backup, rp, world["server_area"] / "restored")
    assert refused["Status"] == "FAILED", refused  # outside the agent's --allow-path
    message = refused["StatusMessage"]
    assert "\n" not in message and "not under an allowed path" in message, message
    assert not (world["server_area"] / "restored").exists()
    with pytest.raises(ClientError) as relative:
        backup.start_restore_job(
            RecoveryPointArn=rp, Metadata={"targetPath": "rel/x"}, IamRoleArn=stories.ROLE
        )
    assert relative.value.response["Error"]["Code"] in _INVALID, relative.value.response
    restore = stories.restored(backup, rp, target)
    assert restore["Status"] == "COMPLETED", (restore, log.read_text())
    assert float(restore["PercentDone"]) == 100.0 and restore["BackupSizeInBytes"] > 0, restore
    diff = filecmp.dircmp(source, target)
    assert not (diff.left_only or diff.right_only or diff.diff_files), diff.report()
    for sub in ("d0", "d1", "d2", "d3"):
        inner = filecmp.dircmp(source / sub, target / sub)
        assert not (inner.left_only or inner.right_only or inner.diff_files)
        for name in inner.common_files:
            assert (source / sub / name).read_bytes() == (target / sub / name).read_bytes()
    assert os.readlink(target / "link") == "d0"

    # unchanged: the second point uploads nothing, the vault had it all
    again = stories.backed_up(backup, VAULT, arn)
    assert again["State"] == "COMPLETED", again
    lines = [line for line in log.read_text().splitlines() if "blob(s) uploaded" in line]
    assert len(lines) == 2 and " 0 blob(s) uploaded" in lines[1], lines

    listed = stories.sv_json(server, "agent", "list")
    [row] = [a for a in listed if a["Host"] == HOST]
    assert row["Version"] and row["LastSeenAt"]

    # killed mid-job: the lease runs out, the job is retried, never RUNNING forever
    big = world["agent_area"] / "big"
    big.mkdir()
    rng = random.Random(7)
    for i in range(3):
        (big / f"blob{i}.bin").write_bytes(rng.randbytes(8 * 1024 * 1024))
    big_arn = stories.sv_json(
        server, "resource", "add", "directory", str(big), "--host", HOST, "--name", "big"
    )["ResourceArn"]
    packs_before = _packs(server)
    job = backup.start_backup_job(
        BackupVaultName=VAULT, ResourceArn=big_arn, IamRoleArn=stories.ROLE
    )
    running = _wait(backup, job["BackupJobId"], {"RUNNING"} | FINAL, timeout=30)
    assert running["State"] == "RUNNING", running
    deadline = time.monotonic() + 30
    while _packs(server) <= packs_before and time.monotonic() < deadline:
        time.sleep(0.05)  # until the first attempt stored a pack
    assert _job(backup, job["BackupJobId"])["State"] == "RUNNING"
    agent.send_signal(signal.SIGKILL)
    agent.wait(timeout=20)
    move_clock(server, advance_seconds=30)  # test mode: leases run on the simulated clock
    retried = stories.poll(
        lambda: _job(backup, job["BackupJobId"]),
        "State",
        {"PENDING", "CREATED", "FAILED"},
        timeout=60,
    )
    assert retried["State"] in ("PENDING", "CREATED", "FAILED"), retried
    assert "stopped answering" in retried.get("StatusMessage", ""), retried

    _agent2, log2 = _start_agent(world, key, 2)
    finished = _wait(backup, job["BackupJobId"], FINAL, timeout=120)
    assert finished["State"] == "COMPLETED", (finished, log2.read_text())
    target2 = world["agent_area"] / "big-restored"
    assert stories.restored(backup, finished["RecoveryPointArn"], target2)["Status"] == "COMPLETED"
    for i in range(3):
        assert (target2 / f"blob{i}.bin").read_bytes() == (big / f"blob{i}.bin").read_bytes()
    [resumed] = [line for line in log2.read_text().splitlines() if "blob(s) uploaded" in line]
    skipped = int(resumed.split(", ")[-1].split()[0])
    assert skipped > 0, resumed  # what the killed attempt stored was not sent again
