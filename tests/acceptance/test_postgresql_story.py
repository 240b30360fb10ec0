"""A PostgreSQL cluster protected end to end through the real server: registered over
the extension API with its password as a Properties secret (sealed, never shown),
backed up and restored with boto3, one database back into 127.0.0.1:5432 under a new name with
identical rows; targets outside the operator's rules refused before any job exists."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from helpers.pg_cluster import PgCluster, digest_of
from helpers.stories import FINAL_RESTORE, ROLE, backed_up, code_of, poll
from helpers.sv_server import ExtCall, ServerProcess

PASSWORD = "st0ry-Pa55word"


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    with PgCluster() as pg:
        pg.create_role("backup", PASSWORD, replication=True)
        pg.execute("CREATE DATABASE shop")
        pg.execute(
            "CREATE TABLE orders (id int PRIMARY KEY, total numeric, placed date);"
            "INSERT INTO orders SELECT g, g * 2.5, date '2026-01-01' + g % 300"
            " FROM generate_series(1, 5000) g;",
            db="shop",
        )
        yield pg


def test_a_cluster_is_backed_up_and_a_database_restored_under_a_new_name(
    snowvault_server: ServerProcess, backup: Any, ext: ExtCall, cluster: PgCluster
) -> None:
    registered = ext(
        "RegisterResource",
        {
            "ResourceType": "PostgreSQL",
            "Name": "shop-db",
            "Source": cluster.dsn("backup"),
            "Properties": {"password": PASSWORD},
        },
    )
    arn = registered["ResourceArn"]
    assert arn.endswith(":postgresql/shop-db")
    listed = ext("ListResources", {"ResourceType": "PostgreSQL"})
    described = ext("DescribeResource", {"ResourceArn": arn})
    assert PASSWORD not in str(registered) + str(listed) + str(described)
    assert "Discovery" in described
    assert f"postgresql://backup@127.0.0.1:{cluster.port}" in str(listed)

    backup.create_backup_vault(BackupVaultName="pg")
    job = backed_up(backup, "pg", arn)
    assert job["State"] == "COMPLETED", job.get("StatusMessage")
    assert job["BackupSizeInBytes"] > 0
    rp_arn = job["RecoveryPointArn"]
    defaults = backup.get_recovery_point_restore_metadata(
        BackupVaultName="pg", RecoveryPointArn=rp_arn
    )["RestoreMetadata"]
    assert defaults["targetDsn"] == f"postgresql://backup@127.0.0.1:{cluster.port}"

    for bad, code in (
        ({"targetDsn": "postgresql://postgres@10.20.30.40:5432"}, "AccessDeniedException"),
        ({"targetDirectory": "/etc/pg-restored"}, "AccessDeniedException"),
        (
            {"targetDsn": f"postgresql://postgres:{PASSWORD}@127.0.0.1"},
            "InvalidParameterValueException",
        ),
    ):
        assert (
            code_of(
                backup.start_restore_job, RecoveryPointArn=rp_arn, Metadata=bad, IamRoleArn=ROLE
            )[0]
            == code
        )

    name = f"shop_story_{uuid.uuid4().hex[:8]}"
    try:
        started = backup.start_restore_job(
            RecoveryPointArn=rp_arn,
            Metadata={
                "targetDsn": "postgresql://postgres@127.0.0.1:5432",
                "databases": "shop",
                "renameTo": name,
            },
            IamRoleArn=ROLE,
        )
        done = poll(
            lambda: backup.describe_restore_job(RestoreJobId=started["RestoreJobId"]),
            "Status",
            FINAL_RESTORE,
        )
        assert done["Status"] == "COMPLETED", done.get("StatusMessage")
        assert done["CreatedResourceArn"].endswith(f"127.0.0.1:5432/{name}")
        restored = f"host=127.0.0.1 port=5432 user=postgres dbname={name}"
        assert digest_of(restored, "orders") == cluster.digest("shop", "orders")
    finally:
        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres", autocommit=True) as c:
            c.execute(
                psycopg.sql.SQL("DROP DATABASE IF EXISTS {}").format(psycopg.sql.Identifier(name))
            )
    assert PASSWORD not in snowvault_server.log.read_text(errors="replace")
