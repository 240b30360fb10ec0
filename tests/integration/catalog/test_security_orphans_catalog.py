"""DeleteBackupVault against job creation, both orders, with two real transactions on
SQLite and PostgreSQL: the one that comes second waits for the first and then sees its
result, so no job is ever queued into a vault whose delete has already checked."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy.engine import Engine

from helpers.catalog_db import ACCOUNT, REGION, T0, make_vault
from snowvault.control import catalog
from snowvault.control.model import jobs as job_rules
from snowvault.control.model import windows
from snowvault.core.errors import NotFound


def _vault(engine: Engine) -> str:
    with catalog.db.transaction(engine) as conn:
        catalog.accounts.create_account(conn, account_id=ACCOUNT, name="main", created_at=T0)
        return str(make_vault(conn)["arn"])


def _create_job(conn: Any, arn: str) -> None:
    target = job_rules.Target(
        resource_arn="arn:res:1",
        resource_type="Directory",
        resource_name=None,
        worker_label=None,
        vault_name="main",
        vault_arn=arn,
        vault_type="BACKUP_VAULT",
        encryption_key_arn=None,
    )
    job = job_rules.new_backup_job(
        job_id="job-1",
        account_id=ACCOUNT,
        region=REGION,
        target=target,
        now=T0,
        deadlines=windows.deadlines(T0, windows.validate_windows(None, None)),
        recovery_point_arn="arn:rp:1",
        iam_role_arn=None,
        lifecycle=None,
        recovery_point_tags=None,
    )
    catalog.jobs.create(conn, job)


def test_a_job_queued_while_the_vault_is_being_deleted_waits_then_fails(
    engine: Engine,
) -> None:
    arn = _vault(engine)
    outcome: list[str] = []

    def queue_job() -> None:
        try:
            with catalog.db.transaction(engine) as conn:
                _create_job(conn, arn)
            outcome.append("queued")
        except NotFound:
            outcome.append("vault not found")

    with catalog.db.transaction(engine) as deleting:
        catalog.vaults.lock(deleting, arn)
        assert catalog.jobs.using_vault(deleting, arn) == []
        thread = threading.Thread(target=queue_job)
        thread.start()
        thread.join(1.0)
        assert thread.is_alive()  # held by the vault row (PostgreSQL) / write lock (SQLite)
        catalog.vaults.delete(deleting, arn)
    thread.join(30)
    assert outcome == ["vault not found"]


def test_a_delete_that_comes_second_sees_the_job_queued_first(engine: Engine) -> None:
    arn = _vault(engine)
    seen: list[list[catalog.jobs.VaultUse]] = []

    def check_for_delete() -> None:
        with catalog.db.transaction(engine) as conn:
            catalog.vaults.lock(conn, arn)
            seen.append(catalog.jobs.using_vault(conn, arn))

    with catalog.db.transaction(engine) as queueing:
        _create_job(queueing, arn)
        thread = threading.Thread(target=check_for_delete)
        thread.start()
        thread.join(1.0)
        assert thread.is_alive()  # the delete waits for the insert to commit
    thread.join(30)
    assert seen == [[catalog.jobs.VaultUse("backup", "job-1", "CREATED")]]
