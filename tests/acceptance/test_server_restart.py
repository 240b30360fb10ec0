"""SIGKILL the server in the middle of a ~100 MB backup, start it again: the job must end
(FAILED, or retried to COMPLETED), never stay RUNNING, and the vault must pass check."""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import urllib3

from helpers.sv_server import ServerProcess, new_server
from snowvault import app as app_mod
from snowvault.control.services import vaults
from snowvault.engine import check

ROLE = "arn:aws:iam::123456789012:role/backup"
FINAL = {"COMPLETED", "PARTIAL", "FAILED", "ABORTED", "EXPIRED"}
LEASE_SECONDS = 3.0


def big_tree(root: Path, seed: int = 7, files: int = 1600, size: int = 64 * 1024) -> int:
    """~100 MiB of incompressible data in many files (slow enough to interrupt)."""
    rng = random.Random(seed)
    for i in range(files):
        path = root / f"dir{i % 40:02d}" / f"file{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
    return files * size


def wait_for(fetch: Any, predicate: Any, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    doc: dict[str, Any] = fetch()
    while not predicate(doc) and time.monotonic() < deadline:
        time.sleep(0.05)
        doc = fetch()
    return doc


@pytest.mark.slow
def test_killed_mid_backup_never_stays_running(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    server: ServerProcess = new_server(tmp_path_factory)
    server.init(lease_seconds=LEASE_SECONDS, sweep_seconds=0.5, poll_seconds=0.2)
    server.start()
    try:
        total = big_tree(tmp_path / "big")
        backup = server.client()
        backup.create_backup_vault(BackupVaultName="crash")
        arn = server.ext(
            "RegisterResource",
            {"ResourceType": "Directory", "Name": "big", "Source": str(tmp_path / "big")},
        )["ResourceArn"]
        job_id = backup.start_backup_job(BackupVaultName="crash", ResourceArn=arn, IamRoleArn=ROLE)[
            "BackupJobId"
        ]

        def describe() -> dict[str, Any]:
            doc: dict[str, Any] = backup.describe_backup_job(BackupJobId=job_id)
            return doc

        running = wait_for(describe, lambda d: d["State"] != "CREATED", timeout=30)
        assert running["State"] == "RUNNING", running
        server.stop(signal.SIGKILL)

        server.start()
        # --test-mode's clock only moves when told: move it past the dead worker's lease
        # so the sweeper sees the lease expire (a real server's clock flows by itself).
        resp = urllib3.request(
            "POST",
            server.endpoint + "/_snowvault/clock",
            body=json.dumps({"advance_seconds": LEASE_SECONDS * 3}).encode(),
            timeout=600,
        )
        assert resp.status == 200, resp.data
        backup = server.client()
        final = wait_for(describe, lambda d: d["State"] in FINAL, timeout=240)
        assert final["State"] in ("COMPLETED", "FAILED"), final
        if final["State"] == "COMPLETED":
            assert final["BytesTransferred"] == total
            points = backup.list_recovery_points_by_backup_vault(BackupVaultName="crash")
            assert [p["RecoveryPointArn"] for p in points["RecoveryPoints"]] == [
                final["RecoveryPointArn"]
            ]
        else:
            assert final["StatusMessage"]
    finally:
        server.stop()
    app = app_mod.build(server.data_dir)
    try:
        vault = vaults.all_vaults(app.deps)[0]
        with vaults.open_repository(app.deps, vault) as repo:
            report = check.check(repo)
        assert report.ok, report
    finally:
        app.close()
