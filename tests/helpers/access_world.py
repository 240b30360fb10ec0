"""A small snowvault world for the access-control service tests: a SQLite catalog, a
FakeClock, local storage, the root account, users, a second account, and real backups
run through the backup job service (so restores and engine checks are real).

Every API-shaped call goes through :meth:`World.api`, which does what the API does
before a handler: ``authorization.authorize_operation`` for the operation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from snowvault.control import catalog
from snowvault.control.model import host_paths, jobs
from snowvault.control.services import (
    accounts,
    authorization,
    backup_jobs,
    iam,
    resources,
    vaults,
)
from snowvault.control.services.base import Caller, Deps, Storage
from snowvault.engine import check, crypto, restorer
from snowvault.testing import FakeClock, ServerVaultKeys

T = TypeVar("T")
REGION = "us-east-1"
ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/backup"


class _Control:
    def report(self, **progress: Any) -> None:
        return None


def admin_policy(*extra_deny: str) -> str:
    statements: list[dict[str, Any]] = [{"Effect": "Allow", "Action": "backup:*", "Resource": "*"}]
    if extra_deny:
        statements.append({"Effect": "Deny", "Action": list(extra_deny), "Resource": "*"})
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


class World:
    def __init__(self, tmp_path: Path, clock: FakeClock) -> None:
        self.tmp = tmp_path
        self.clock = clock
        engine = catalog.db.create_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
        catalog.db.upgrade(engine)
        storage = tmp_path / "storage"
        storage.mkdir()
        paths = host_paths.Policy.build([str(tmp_path)], [], [str(storage)], os.path.realpath)
        self.deps = Deps(
            engine, clock, Storage({REGION: str(storage)}), ServerVaultKeys(b"v" * 32), paths
        )
        self.box = crypto.SecretBox(b"r" * 32, "access-keys")
        self.root_creds = accounts.bootstrap(engine, self.box, now=clock.now(), account_id=ACCOUNT)
        self._sources = 0

    # ----------------------------------------------------------------- principals

    def caller(self, principal_arn: str | None = None, source_ip: str = "127.0.0.1") -> Caller:
        arn = principal_arn or accounts.root_arn(ACCOUNT)
        account = arn.split(":")[4]
        return Caller(account, REGION, arn, self.clock.now(), source_ip)

    @property
    def root(self) -> Caller:
        return self.caller()

    def user(self, name: str, policy: str | None = None) -> Caller:
        iam.create_user(self.deps, self.root, name)
        if policy is not None:
            iam.put_user_policy(self.deps, self.root, name, "p", policy)
        return self.caller(iam.user_arn(ACCOUNT, name))

    def other_account(self) -> Caller:
        iam.create_account(self.deps, self.root, self.box, "other", OTHER_ACCOUNT)
        return self.caller(accounts.root_arn(OTHER_ACCOUNT))

    # ---------------------------------------------------------------------- calls

    def api(
        self,
        who: Caller,
        operation: str,
        params: dict[str, Any],
        call: Callable[..., T],
        *args: Any,
        **kwargs: Any,
    ) -> T:
        """What the API does: authorize ``backup:<operation>``, then call the service."""
        who = self.caller(who.principal_arn, who.source_ip or "127.0.0.1")  # now = clock now
        authorization.authorize_operation(self.deps, who, operation, params)
        return call(self.deps, who, *args, **kwargs)

    # -------------------------------------------------------------------- backups

    def vault(self, name: str) -> dict[str, Any]:
        return vaults.create(self.deps, self.root, name)

    def backup(self, vault_name: str, delete_after_days: int | None) -> jobs.RecoveryPoint:
        """Run one real backup job to its end; returns its recovery point."""
        self._sources += 1
        source = self.tmp / f"src{self._sources}"
        source.mkdir()
        (source / "shared.txt").write_bytes(b"shared content " * 500)
        (source / "own.bin").write_bytes(bytes([self._sources]) * 3000)
        resource = resources.register(
            self.deps,
            self.root,
            resource_type="Directory",
            name=f"src{self._sources}",
            source=str(source),
        )
        lifecycle = None if delete_after_days is None else {"DeleteAfterDays": delete_after_days}
        job = backup_jobs.start(
            self.deps,
            self.root,
            backup_jobs.StartRequest(vault_name, resource["arn"], ROLE, lifecycle=lifecycle),
        )
        claimed = backup_jobs.JOB_KIND.claim(self.deps, "w", [], 60)
        assert claimed is not None and claimed.job_id == job.job_id
        state = backup_jobs.JOB_KIND.execute(self.deps, claimed, "w", _Control())
        with catalog.db.transaction(self.deps.engine) as conn:
            done = catalog.jobs.get(conn, job.job_id)
        assert state == "COMPLETED", done.status_message
        with catalog.db.transaction(self.deps.engine) as conn:
            return catalog.recovery_points.get(conn, job.recovery_point_arn)

    def failed_backup_message(self, vault_name: str, delete_after_days: int | None) -> str:
        self._sources += 1
        source = self.tmp / f"failing{self._sources}"
        source.mkdir()
        resource = resources.register(
            self.deps,
            self.root,
            resource_type="Directory",
            name=f"failing{self._sources}",
            source=str(source),
        )
        lifecycle = None if delete_after_days is None else {"DeleteAfterDays": delete_after_days}
        job = backup_jobs.start(
            self.deps,
            self.root,
            backup_jobs.StartRequest(vault_name, resource["arn"], ROLE, lifecycle=lifecycle),
        )
        claimed = backup_jobs.JOB_KIND.claim(self.deps, "w", [], 60)
        assert claimed is not None
        assert backup_jobs.JOB_KIND.execute(self.deps, claimed, "w", _Control()) == "FAILED"
        with catalog.db.transaction(self.deps.engine) as conn:
            return str(catalog.jobs.get(conn, job.job_id).status_message)

    def points(self, vault_name: str) -> set[str]:
        vault = vaults.get(self.deps, self.root, vault_name)
        with catalog.db.transaction(self.deps.engine) as conn:
            page = catalog.recovery_points.list_by_vault(conn, vault_arn=vault["arn"])
        return {rp.arn for rp in page.items}

    def assert_intact(self, vault_name: str, rps: list[jobs.RecoveryPoint]) -> None:
        """The vault passes engine check and every given point restores its bytes."""
        vault = vaults.get(self.deps, self.root, vault_name)
        with vaults.open_repository(self.deps, vault) as repo:
            report = check.check(repo, read_data=True)
            assert report.problems == []
            for rp in rps:
                target = self.tmp / f"restore-{str(rp.engine_recovery_point_id)[:12]}"
                if target.exists():
                    continue
                restorer.restore(repo, str(rp.engine_recovery_point_id), target)
                assert (target / "shared.txt").exists() or any(target.rglob("shared.txt"))

    def advance(self, **delta: float) -> None:
        self.clock.advance(timedelta(**delta))
