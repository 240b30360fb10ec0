"""authorize(): identity policies, vault access policies, root, cross-account, conditions
(aws:SourceIp, aws:CurrentTime, aws:PrincipalAccount), and AWS's AccessDenied wording."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.access_world import ACCOUNT, OTHER_ACCOUNT, REGION, World, admin_policy
from snowvault.control.model import jobs
from snowvault.control.services import authorization, iam, recovery_points, vaults
from snowvault.core.errors import InvalidInput, NotFound
from snowvault.testing import FakeClock

DENY_DELETE = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "NoDeletes",
                "Effect": "Deny",
                "Principal": "*",
                "Action": ["backup:DeleteRecoveryPoint", "backup:UpdateRecoveryPointLifecycle"],
                "Resource": "*",
            }
        ],
    }
)


@pytest.fixture
def world(tmp_path: Path, clock: FakeClock) -> World:
    w = World(tmp_path, clock)
    w.vault("main")
    return w


def _delete(world: World, who: object, rp: jobs.RecoveryPoint) -> None:
    params = {"BackupVaultName": "main", "RecoveryPointArn": rp.arn}
    world.api(who, "DeleteRecoveryPoint", params, recovery_points.delete, "main", rp.arn)  # type: ignore[arg-type]


def test_vault_policy_denying_deletes_stops_everyone_even_root(world: World) -> None:
    rp = world.backup("main", 1)
    admin = world.user("admin", admin_policy())
    iam.put_vault_access_policy(world.deps, world.root, "main", DENY_DELETE)
    for who in (world.root, admin):
        with pytest.raises(authorization.AccessDenied) as err:
            _delete(world, who, rp)
        assert str(err.value) == (
            f"User: {who.principal_arn} is not authorized to perform: backup:DeleteRecoveryPoint"
            f" on resource: {rp.arn} with an explicit deny in a resource-based policy"
        )
    assert world.points("main") == {rp.arn}
    iam.delete_vault_access_policy(world.deps, world.root, "main")
    _delete(world, admin, rp)
    assert world.points("main") == set()


def test_user_without_policy_is_denied_and_identity_deny_wins(world: World) -> None:
    nobody = world.user("nobody")
    with pytest.raises(authorization.AccessDenied, match="because no identity-based policy"):
        world.api(nobody, "ListBackupVaults", {}, vaults.list_vaults)
    limited = world.user("limited", admin_policy("backup:DeleteBackupVault"))
    assert world.api(limited, "ListBackupVaults", {}, vaults.list_vaults).items
    with pytest.raises(authorization.AccessDenied, match="explicit deny in an identity-based"):
        world.api(limited, "DeleteBackupVault", {"BackupVaultName": "main"}, vaults.delete, "main")
    assert vaults.get(world.deps, world.root, "main")


def test_cross_account_needs_the_vault_policy(world: World) -> None:
    rp = world.backup("main", 1)
    other = world.other_account()
    vault_arn = vaults.get(world.deps, world.root, "main")["arn"]
    params = {"BackupVaultName": "main", "RecoveryPointArn": rp.arn}
    resource, policy_vault = authorization.resource_for(
        world.deps, other, "DeleteRecoveryPoint", params
    )
    assert (resource, policy_vault) == (rp.arn, vault_arn)  # the vault in the RP's account
    with pytest.raises(authorization.AccessDenied, match="no resource-based policy"):
        authorization.authorize_operation(world.deps, other, "DescribeRecoveryPoint", params)
    allow_other = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
                "Action": "backup:DescribeRecoveryPoint",
                "Resource": "*",
            }
        ],
    }
    iam.put_vault_access_policy(world.deps, world.root, "main", allow_other)
    authorization.authorize_operation(world.deps, other, "DescribeRecoveryPoint", params)
    with pytest.raises(authorization.AccessDenied):
        authorization.authorize_operation(world.deps, other, "DeleteRecoveryPoint", params)


def test_conditions_see_source_ip_time_and_account(world: World) -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "backup:List*",
                "Resource": "*",
                "Condition": {
                    "IpAddress": {"aws:SourceIp": "10.1.0.0/16"},
                    "DateLessThan": {"aws:CurrentTime": "2026-01-02T00:00:00Z"},
                    "StringEquals": {"aws:PrincipalAccount": ACCOUNT},
                },
            }
        ],
    }
    user = world.user("ops", json.dumps(policy))
    inside = world.caller(user.principal_arn, "10.1.2.3")
    outside = world.caller(user.principal_arn, "192.0.2.1")
    world.api(inside, "ListBackupVaults", {}, vaults.list_vaults)
    with pytest.raises(authorization.AccessDenied):
        world.api(outside, "ListBackupVaults", {}, vaults.list_vaults)
    world.clock.advance(86400)  # 2026-01-02T00:00:00Z: DateLessThan no longer holds
    with pytest.raises(authorization.AccessDenied):
        world.api(inside, "ListBackupVaults", {}, vaults.list_vaults)


def test_unknown_principal_and_iam_management(world: World) -> None:
    ghost = world.caller(iam.user_arn(ACCOUNT, "ghost"))
    assert not authorization.allowed(world.deps, ghost, "backup:ListBackupVaults", "*")
    with pytest.raises(InvalidInput, match="MalformedPolicyDocument"):
        iam.put_user_policy(world.deps, world.root, "ghost", "p", "{not json")
    with pytest.raises(NotFound):
        iam.put_user_policy(world.deps, world.root, "ghost", "p", admin_policy())
    alice = world.user("alice", admin_policy())
    creds = iam.create_access_key(world.deps, world.root, "alice", world.box)
    assert creds.principal_arn == alice.principal_arn and creds.account_id == ACCOUNT
    assert iam.get_user_policy(world.deps, world.root, "alice", "p")["Statement"]
    assert [u["name"] for u in iam.list_users(world.deps, world.root)] == ["alice"]
    with pytest.raises(authorization.AccessDenied, match="CreateAccount"):
        iam.create_account(world.deps, alice, world.box, "x")
    with pytest.raises(NotFound):
        iam.get_vault_access_policy(world.deps, world.root, "main")


def test_resource_for_picks_the_aws_resource(world: World) -> None:
    who = world.root
    vault = f"arn:aws:backup:{REGION}:{ACCOUNT}:backup-vault:v"

    def resource_for(operation: str, params: dict[str, str], service: str = "backup") -> object:
        return authorization.resource_for(world.deps, who, operation, params, service)

    assert resource_for("DescribeBackupVault", {"BackupVaultName": "v"}) == (vault, vault)
    hold = resource_for("GetLegalHold", {"LegalHoldId": "h"})
    assert hold == (f"arn:aws:backup:{REGION}:{ACCOUNT}:legal-hold:h", None)
    assert resource_for("ListBackupJobs", {}) == ("*", None)
    key = resource_for("DisableKey", {"KeyId": "k1"}, service="kms")
    assert key == (f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k1", None)
    with pytest.raises(authorization.AccessDenied, match="has no authorization rule"):
        resource_for("DescribeReportJob", {"ReportJobId": "c"})
