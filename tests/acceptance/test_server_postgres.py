"""The server on a PostgreSQL catalog (`init --catalog-url postgresql://...`): the same
vault / backup / restore story as on SQLite, against the real PostgreSQL on 127.0.0.1."""

from __future__ import annotations

import filecmp
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from helpers.sv_server import ServerProcess, new_server

PG = "postgresql://postgres@127.0.0.1:5432"
ROLE = "arn:aws:iam::123456789012:role/backup"


@pytest.fixture
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    name = f"sv_accept_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    server = new_server(tmp_path_factory)
    try:
        server.init("--catalog-url", f"{PG}/{name}")
        server.start()
        yield server
    finally:
        server.stop()
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _wait(fetch: Any, key: str, final: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    doc: dict[str, Any] = fetch()
    while doc[key] not in final:
        assert time.monotonic() < deadline, doc
        time.sleep(0.1)
        doc = fetch()
    return doc


def test_backup_and_restore_with_a_postgresql_catalog(
    pg_server: ServerProcess, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("catalog on postgres\n")
    (source / "sub" / "b.bin").write_bytes(bytes(range(256)) * 4096)
    backup = pg_server.client()
    backup.create_backup_vault(BackupVaultName="pg")
    arn = pg_server.ext(
        "RegisterResource", {"ResourceType": "Directory", "Name": "src", "Source": str(source)}
    )["ResourceArn"]
    job = backup.start_backup_job(BackupVaultName="pg", ResourceArn=arn, IamRoleArn=ROLE)
    done = _wait(
        lambda: backup.describe_backup_job(BackupJobId=job["BackupJobId"]),
        "State",
        {"COMPLETED", "FAILED"},
    )
    assert done["State"] == "COMPLETED", done
    points = backup.list_recovery_points_by_backup_vault(BackupVaultName="pg")["RecoveryPoints"]
    assert [p["RecoveryPointArn"] for p in points] == [done["RecoveryPointArn"]]
    target = tmp_path / "out"
    restore = backup.start_restore_job(
        RecoveryPointArn=done["RecoveryPointArn"],
        IamRoleArn=ROLE,
        Metadata={"targetPath": str(target)},
    )
    finished = _wait(
        lambda: backup.describe_restore_job(RestoreJobId=restore["RestoreJobId"]),
        "Status",
        {"COMPLETED", "FAILED", "ABORTED"},
    )
    assert finished["Status"] == "COMPLETED", finished
    cmp = filecmp.dircmp(source, target)
    assert not cmp.left_only and not cmp.right_only and not cmp.diff_files
    assert (target / "sub" / "b.bin").read_bytes() == (source / "sub" / "b.bin").read_bytes()
