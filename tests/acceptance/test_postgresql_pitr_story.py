"""Continuous backup of a PostgreSQL cluster through the real server: a plan rule with
EnableContinuousBackup makes the worker's streamer give the cluster ONE continuous point
(its window shown by DescribeRecoveryPoint's SnowvaultRestorableWindow and by
``snowvault recovery-point describe``); a pointInTime outside the window is refused with
InvalidParameterValueException naming it; a restore to an instant inside starts with
``pg_ctl`` at exactly that state; a rule keeping continuous points too long is refused."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from helpers.pg_cluster import PgCluster
from helpers.stories import FINAL_RESTORE, ROLE, poll, sv_json
from helpers.sv_server import ExtCall, ServerProcess, new_server

PASSWORD = "p1tr-Pa55word"


@pytest.fixture(scope="module")
def targets() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="sv-pitr-story-")
    os.chmod(path, 0o755)  # the postgres user starts the restored cluster in it
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, targets: str) -> Iterator[ServerProcess]:
    s = new_server(tmp_path_factory)
    s.init(
        allow_paths=(targets,),
        lease_seconds=10,
        sweep_seconds=1,
        poll_seconds=0.2,
        continuous_seconds=1,
        continuous_ship_seconds=3,
    )
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    with PgCluster() as pg:
        pg.create_role("backup", PASSWORD, replication=True)
        pg.execute("CREATE TABLE ledger (n int, at timestamptz DEFAULT clock_timestamp())")
        yield pg


def _window(backup: Any, arn: str) -> dict[str, Any]:
    """DescribeRecoveryPoint with the extension member botocore's model lacks."""
    seen: dict[str, Any] = {}

    def keep(http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
        import json

        seen.update(json.loads(http_response.content).get("SnowvaultRestorableWindow") or {})

    backup.meta.events.register("after-call.backup.DescribeRecoveryPoint", keep)
    try:
        backup.describe_recovery_point(BackupVaultName="pitr", RecoveryPointArn=arn)
    finally:
        backup.meta.events.unregister("after-call.backup.DescribeRecoveryPoint", keep)
    return seen


def test_continuous_point_restores_to_an_instant(
    server: ServerProcess, cluster: PgCluster, targets: str
) -> None:
    backup = server.client()
    ext: ExtCall = server.ext
    arn = ext(
        "RegisterResource",
        {
            "ResourceType": "PostgreSQL",
            "Name": "ledger",
            "Source": cluster.dsn("backup"),
            "Properties": {"password": PASSWORD},
        },
    )["ResourceArn"]
    backup.create_backup_vault(BackupVaultName="pitr")
    rule = {
        "RuleName": "pitr",
        "TargetBackupVaultName": "pitr",
        "EnableContinuousBackup": True,
        "Lifecycle": {"DeleteAfterDays": 36},
    }
    with pytest.raises(ClientError) as refused:  # AWS: continuous points keep 1-35 days
        backup.create_backup_plan(BackupPlan={"BackupPlanName": "too-long", "Rules": [rule]})
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValueException"
    rule["Lifecycle"] = {"DeleteAfterDays": 7}
    plan = backup.create_backup_plan(BackupPlan={"BackupPlanName": "pitr", "Rules": [rule]})
    backup.create_backup_selection(
        BackupPlanId=plan["BackupPlanId"],
        BackupSelection={"SelectionName": "ledger", "IamRoleArn": ROLE, "Resources": [arn]},
    )

    def point() -> dict[str, Any]:
        items = backup.list_recovery_points_by_backup_vault(BackupVaultName="pitr")
        found = items["RecoveryPoints"]
        return found[0] if found else {"Status": "NONE"}

    first = poll(point, "Status", {"COMPLETED"}, timeout=90)
    assert first["Status"] == "COMPLETED", first
    rp_arn = first["RecoveryPointArn"]

    cluster.execute("INSERT INTO ledger (n) SELECT g FROM generate_series(1, 10) g")
    time.sleep(1.0)
    instant = cluster.execute("SELECT clock_timestamp()")[0][0]
    time.sleep(1.0)
    cluster.execute("INSERT INTO ledger (n) SELECT g FROM generate_series(11, 20) g")
    deadline = time.monotonic() + 75  # shipped within 60 s of the commit
    while True:
        window = _window(backup, rp_arn)
        if window.get("Latest") and window["Latest"] > instant.isoformat().replace("+00:00", "Z"):
            break
        assert time.monotonic() < deadline, window
        time.sleep(1.0)
    assert window["Earliest"] < window["Latest"]
    shown = sv_json(server, "recovery-point", "describe", rp_arn, "--vault", "pitr")
    assert shown["SnowvaultRestorableWindow"]["Earliest"] == window["Earliest"]
    listed = backup.list_recovery_points_by_backup_vault(BackupVaultName="pitr")
    assert len(listed["RecoveryPoints"]) == 1  # one continuous point, updated in place

    meta = backup.get_recovery_point_restore_metadata(
        BackupVaultName="pitr", RecoveryPointArn=rp_arn
    )
    assert meta["RestoreMetadata"]["pointInTime"].endswith("Z")

    target = os.path.join(targets, "restored")
    late = (instant + timedelta(days=1)).isoformat()
    with pytest.raises(ClientError) as outside:
        backup.start_restore_job(
            RecoveryPointArn=rp_arn,
            Metadata={"targetDirectory": target, "pointInTime": late},
            IamRoleArn=ROLE,
        )
    error = outside.value.response["Error"]
    assert error["Code"] == "InvalidParameterValueException"
    assert window["Earliest"] in error["Message"]

    job = backup.start_restore_job(
        RecoveryPointArn=rp_arn,
        Metadata={"targetDirectory": target, "pointInTime": instant.isoformat()},
        IamRoleArn=ROLE,
    )
    done = poll(
        lambda: backup.describe_restore_job(RestoreJobId=job["RestoreJobId"]),
        "Status",
        FINAL_RESTORE,
        timeout=90,
    )
    assert done["Status"] == "COMPLETED", done.get("StatusMessage")
    restored = PgCluster.adopt(target).start()
    try:
        deadline = time.monotonic() + 30
        while restored.execute("SELECT pg_is_in_recovery()")[0][0]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert restored.execute("SELECT count(*), max(n) FROM ledger") == [(10, 10)]
    finally:
        restored.cleanup()
    assert PASSWORD not in server.log.read_text(errors="replace")
