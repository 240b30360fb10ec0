"""A point's unique bytes through the real server (issue 14): DescribeRecoveryPoint's raw
JSON carries ``SnowvaultUniqueBytes`` (boto3 drops it), and ``snowvault recovery-point
describe`` shows it: a first point holds its data alone, an unchanged second point
shares all of it, so the first's unique bytes fall to what its trees hold alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from helpers.stories import backed_up, make_tree, register, sv, sv_json
from helpers.sv_server import ServerProcess


def _raw_unique(backup: Any, rp_arn: str) -> Any:
    seen: dict[str, Any] = {}

    def keep(http_response: Any, **_: Any) -> None:
        seen.update(json.loads(http_response.content))

    backup.meta.events.register("after-call.backup.DescribeRecoveryPoint", keep)
    parsed = backup.describe_recovery_point(BackupVaultName="main", RecoveryPointArn=rp_arn)
    assert "SnowvaultUniqueBytes" not in parsed  # botocore's model lacks it
    return seen.get("SnowvaultUniqueBytes")


def test_describe_shows_what_deleting_a_point_frees(
    snowvault_server: ServerProcess, tmp_path: Path
) -> None:
    server = snowvault_server  # conftest: one server for this module
    backup = server.client()
    size = make_tree(tmp_path / "src", seed=3, files=4, size=60_000)
    backup.create_backup_vault(BackupVaultName="main")
    arn = register(server.ext, "unique-src", tmp_path / "src")
    first = backed_up(backup, "main", arn)
    assert first["State"] == "COMPLETED", first
    alone = _raw_unique(backup, first["RecoveryPointArn"])
    assert isinstance(alone, int) and size <= alone < size * 1.1  # random: incompressible

    second = backed_up(backup, "main", arn)  # nothing changed: it shares every blob
    assert second["State"] == "COMPLETED", second
    shared = _raw_unique(backup, first["RecoveryPointArn"])
    assert isinstance(shared, int) and shared < size // 10

    doc = sv_json(
        server, "recovery-point", "describe", second["RecoveryPointArn"], "--vault", "main"
    )
    assert doc["SnowvaultUniqueBytes"] == _raw_unique(backup, second["RecoveryPointArn"])
    text = sv(server, "recovery-point", "describe", second["RecoveryPointArn"], "--vault", "main")
    assert "unique" in text.stdout and "freed by deleting it" in text.stdout
