"""A newcomer's first hour through the ``snowvault`` command against a real server:
names where ids were needed, an ARN alone, sizes as the API gives them, restore jobs
with vault/resource/target, errors in flag terms, and ``quickstart --dir`` honest on a
re-run with another directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helpers.stories import sv, sv_json
from helpers.sv_server import ServerProcess
from snowvault.interfaces.cli import render


def _tree(root: Path) -> None:
    for i in range(6):
        path = root / f"d{i % 2}" / f"f{i}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes([i]) * 40_000)


def test_names_arns_sizes_restores_and_flag_errors(
    snowvault_server: ServerProcess, backup: Any, tmp_path: Path
) -> None:
    server = snowvault_server
    source = tmp_path / "src"
    _tree(source)
    sv_json(server, "vault", "create", "nc-vault")
    sv_json(server, "resource", "add", "directory", str(source), "--name", "nc-src")

    # plans and selections by name
    created = sv_json(
        server, "plan", "create", "--from-template", "daily-35day-retention",
        "--name", "nc-plan", "--vault", "nc-vault",
    )  # fmt: skip
    described = sv_json(server, "plan", "describe", "nc-plan")
    assert described["BackupPlanId"] == created["BackupPlanId"]
    sel = sv_json(
        server, "selection", "create", "--plan", "nc-plan", "--name", "nc-sel",
        "--resource", "nc-src",
    )  # fmt: skip
    preview = sv_json(server, "selection", "preview", "--plan", "nc-plan", "--selection", "nc-sel")
    assert [r["ResourceName"] for r in preview if r.get("Selected")] == ["nc-src"]

    # two backups: the second is incremental; both have the tree's size
    first = sv_json(
        server, "backup", "start", "--resource", "nc-src", "--vault", "nc-vault", "--wait"
    )
    (source / "d0" / "f0.bin").write_bytes(b"changed")
    second = sv_json(
        server, "backup", "start", "--resource", "nc-src", "--vault", "nc-vault", "--wait"
    )
    assert first["State"] == second["State"] == "COMPLETED"
    job = backup.describe_backup_job(BackupJobId=second["BackupJobId"])
    listed = sv(server, "job", "list", "--type", "backup").stdout
    line = next(x for x in listed.splitlines() if second["BackupJobId"] in x)
    assert job["BackupSizeInBytes"] > 200_000  # the tree's size, not what the increment added
    assert render.size(job["BackupSizeInBytes"]) in line

    by_resource = backup.list_recovery_points_by_resource(ResourceArn=job["ResourceArn"])
    api_size = next(
        p.get("BackupSizeBytes", p.get("BackupSizeInBytes", 0))
        for p in by_resource["RecoveryPoints"]
        if p["RecoveryPointArn"] == second["RecoveryPointArn"]
    )
    shown = sv(server, "recovery-point", "list", "--resource", "nc-src").stdout
    row = next(x for x in shown.splitlines() if second["RecoveryPointArn"] in x)
    assert render.size(api_size) in row

    # a full ARN alone: the vault is found
    rp = second["RecoveryPointArn"]
    point = sv_json(server, "recovery-point", "describe", rp)
    assert point["BackupVaultName"] == "nc-vault" and point["Status"] == "COMPLETED"

    # restore: refused in flag terms, then a listing with vault, resource and target
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine\n")
    refused = sv(
        server, "restore", "start", "--recovery-point", rp, "--to", str(busy), "--wait", ok=False
    )
    assert refused.returncode != 0
    assert "--overwrite" in refused.stderr and "Metadata." not in refused.stderr, refused.stderr
    target = tmp_path / "restored"
    done = sv_json(
        server, "restore", "start", "--recovery-point", rp, "--to", str(target), "--wait"
    )
    assert done["Status"] == "COMPLETED", done
    table = sv(server, "job", "list", "--type", "restore").stdout
    header, *rows = table.splitlines()
    assert all(col in header for col in ("VAULT", "RESOURCE", "TARGET"))
    row = next(x for x in rows if done["RestoreJobId"] in x)
    assert "nc-vault" in row and job["ResourceArn"] in row

    # names to delete, an ARN alone to delete
    sv_json(server, "selection", "delete", "--plan", "nc-plan", "--selection", "nc-sel")
    assert sel["SelectionId"]
    sv_json(server, "plan", "delete", "nc-plan")
    sv_json(server, "recovery-point", "delete", first["RecoveryPointArn"])
    left = sv_json(server, "recovery-point", "list", "--vault", "nc-vault")
    assert [p["RecoveryPointArn"] for p in left] == [rp]


def test_quickstart_again_with_another_dir_protects_that_dir(
    snowvault_server: ServerProcess, tmp_path: Path
) -> None:
    one, two = tmp_path / "qs-one", tmp_path / "qs-two"
    first = sv_json(snowvault_server, "quickstart", "--dir", str(one))
    second = sv(snowvault_server, "quickstart", "--dir", str(two))
    assert f"protected  {two}" in second.stdout
    assert str(one) in second.stderr  # the note: the earlier directory stays protected
    resources = {r["Name"]: r["Source"] for r in sv_json(snowvault_server, "resource", "list")}
    assert resources["quickstart-sample"] == str(one)
    assert resources["quickstart-sample-qs-two"] == str(two)
    entries = sv_json(snowvault_server, "recovery-point", "ls", first["RecoveryPointArn"], "/")
    assert {e["Path"].strip("/") for e in entries} >= {"README.txt", "data", "notes"}
