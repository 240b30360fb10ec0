"""Authorization is complete: every operation of the botocore ``backup`` model and every
extension action, with what it is evaluated against, and checks that it really is.

The table below is the spec. It fails when the model gains an operation, when a handler
or an extension action is added without a row, or when a row disagrees with
``authorization.OPERATIONS``. For every implemented row it then checks, at the service
layer (what the API does before a handler: ``authorization.authorize_operation``):

- vault-bound rows: a Deny for that one action in the access policy of the vault the
  call names (directly, through a recovery point ARN, or through a job id) refuses even
  the account root, while the same Deny on another vault does not;
- rows that are not vault-bound do not consult a vault policy (documented, checked);
- an identity-policy-only user is refused without the action, allowed with it.

The HTTP side (a server subprocess, a second IAM user) is
tests/acceptance/test_security_authz_http.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from helpers.access_world import ACCOUNT, OTHER_ACCOUNT, REGION, World
from snowvault.control.model import jobs
from snowvault.control.services import authorization, copy_jobs, iam, resources, restore_jobs
from snowvault.control.services.base import Caller
from snowvault.interfaces.api import extension, handlers, iam_actions, model
from snowvault.testing import FakeClock

NOT_IMPLEMENTED = "not implemented"
VAULT = "vault"
RP = "recovery-point->vault"
JOB = "job->vault"
ARN = "ARN->vault"  # a vault or recovery point ARN: its vault; other ARNs: their own
PROTECTED = "protected-resource"  # the resource's ARN, no vault policy
PLAN = "plan"
HOLD = "legal-hold"
ACCOUNT_WIDE = "account-wide *"
NEW_RESOURCE = "new-resource"  # RegisterResource: the ARN it will have
IAM_USER = "iam user (or *)"
AGENT = "snowvault:<Action> on * (agents; tests/unit/services/test_agents.py)"

_BACKUP: dict[str, str] = {
    VAULT: """CreateBackupVault DescribeBackupVault DeleteBackupVault PutBackupVaultAccessPolicy
        GetBackupVaultAccessPolicy DeleteBackupVaultAccessPolicy PutBackupVaultLockConfiguration
        DeleteBackupVaultLockConfiguration ListRecoveryPointsByBackupVault
        ListProtectedResourcesByBackupVault StartBackupJob PutBackupVaultNotifications
        GetBackupVaultNotifications DeleteBackupVaultNotifications""",
    RP: """DescribeRecoveryPoint DeleteRecoveryPoint DisassociateRecoveryPointFromParent
        UpdateRecoveryPointLifecycle
        GetRecoveryPointRestoreMetadata StartRestoreJob StartCopyJob""",
    JOB: """DescribeBackupJob StopBackupJob DescribeRestoreJob GetRestoreJobMetadata
        DescribeCopyJob""",
    ARN: "TagResource UntagResource ListTags",
    PROTECTED: """DescribeProtectedResource ListRecoveryPointsByResource
        ListRestoreJobsByProtectedResource""",
    PLAN: """GetBackupPlan UpdateBackupPlan DeleteBackupPlan ListBackupPlanVersions
        ExportBackupPlanTemplate CreateBackupSelection GetBackupSelection DeleteBackupSelection
        ListBackupSelections""",
    HOLD: "GetLegalHold CancelLegalHold ListRecoveryPointsByLegalHold",
    ACCOUNT_WIDE: """CreateBackupPlan ListBackupPlans GetBackupPlanFromJSON
        GetBackupPlanFromTemplate ListBackupPlanTemplates CreateLegalHold ListLegalHolds
        ListBackupVaults ListBackupJobs ListBackupJobSummaries ListRestoreJobs
        ListCopyJobs ListCopyJobSummaries ListProtectedResources DescribeGlobalSettings
        DescribeRegionSettings UpdateRegionSettings GetSupportedResourceTypes""",
    NOT_IMPLEMENTED: """AssociateBackupVaultMpaApprovalTeam CreateBackupAccessPoint
        CreateFramework CreateLogicallyAirGappedBackupVault CreateReportPlan
        CreateRestoreAccessBackupVault CreateRestoreTestingPlan CreateRestoreTestingSelection
        CreateTieringConfiguration DeleteBackupAccessPoint
        DeleteFramework DeleteReportPlan DeleteRestoreTestingPlan DeleteRestoreTestingSelection
        DeleteTieringConfiguration DescribeBackupAccessPoint DescribeFramework
        DescribeReportJob DescribeReportPlan DescribeScanJob
        DisassociateBackupVaultMpaApprovalTeam DisassociateRecoveryPoint
        GetPITRMalwareScanResults GetRecoveryPointIndexDetails
        GetRestoreTestingInferredMetadata GetRestoreTestingPlan GetRestoreTestingSelection
        GetTieringConfiguration ListBackupAccessPoints ListBackupAccessPointsByRecoveryPoint
        ListBackupAccessPointsByResource ListFrameworks
        ListIndexedRecoveryPoints ListReportJobs ListReportPlans ListRestoreAccessBackupVaults
        ListRestoreJobSummaries ListRestoreTestingPlans ListRestoreTestingSelections
        ListScanJobSummaries ListScanJobs ListTieringConfigurations
        PutRestoreValidationResult RevokeRestoreAccessBackupVault StartReportJob
        StartScanJob UpdateFramework UpdateGlobalSettings UpdateRecoveryPointIndexSettings
        UpdateReportPlan UpdateRestoreTestingPlan UpdateRestoreTestingSelection
        UpdateTieringConfiguration""",
}
_EXTENSION: dict[str, str] = {
    VAULT: "ExportRecoveryKey",
    RP: "ListRecoveryPointContents",
    ARN: "TagResource UntagResource",
    PROTECTED: "DescribeResource DeregisterResource",
    PLAN: "PreviewSelection",
    ACCOUNT_WIDE: "ListResources",
    NEW_RESOURCE: "RegisterResource",
    IAM_USER: """CreateAccount CreateUser ListUsers DeleteUser CreateAccessKey ListAccessKeys
        UpdateAccessKey DeleteAccessKey PutUserPolicy GetUserPolicy DeleteUserPolicy""",
    AGENT: """EnrollAgent RevokeAgent ListAgents AgentHello AgentClaimJob AgentHeartbeat
        AgentHasBlobs AgentPutBlobs AgentPutManifest AgentFailJob
        AgentReadBlobs AgentFinishRestore""",
}


def _rows(grouped: dict[str, str]) -> dict[str, str]:
    rows: dict[str, str] = {}
    for category, names in grouped.items():
        for name in names.split():
            assert name not in rows, f"{name} has two rows"
            rows[name] = category
    return rows


BACKUP_ROWS = _rows(_BACKUP)
EXTENSION_ROWS = _rows(_EXTENSION)
VAULT_BOUND = (VAULT, RP, JOB, ARN)
KINDS = {  # the table's words -> authorization.OPERATIONS' kinds
    VAULT: {"vault"},
    RP: {"recovery-point"},
    JOB: {"backup-job", "restore-job", "copy-job"},
    ARN: {"resource-arn"},
    PROTECTED: {"resource-arn"},
    PLAN: {"plan"},
    HOLD: {"legal-hold"},
    ACCOUNT_WIDE: {"account"},
    NEW_RESOURCE: {"new-resource"},
    AGENT: {"account", "agent"},
}


def test_every_operation_and_extension_action_has_a_row() -> None:
    operations = set(model.load("backup").operations)
    assert set(BACKUP_ROWS) == operations, "a model operation without a row, or a stale row"
    implemented = {n for n, c in BACKUP_ROWS.items() if c != NOT_IMPLEMENTED}
    assert implemented == set(handlers.ALL), "a handler without a row (or a row without one)"
    assert set(EXTENSION_ROWS) == set(extension.ACTIONS)
    assert handlers.unruled(handlers.ALL) == []
    assert iam_actions.unruled(extension.ACTIONS) == []
    for rows in (BACKUP_ROWS, EXTENSION_ROWS):
        for name, category in rows.items():
            if category in (NOT_IMPLEMENTED, IAM_USER):
                assert name not in authorization.OPERATIONS or rows is EXTENSION_ROWS, name
                continue
            assert authorization.OPERATIONS[name] in KINDS[category], (name, category)


def test_an_operation_without_a_rule_is_refused_and_stops_the_api_building() -> None:
    who = Caller(ACCOUNT, REGION, f"arn:aws:iam::{ACCOUNT}:root", datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(authorization.AccessDenied, match="no authorization rule"):
        authorization.target_for(None, who, "StartReportJob", {})  # type: ignore[arg-type]
    assert handlers.unruled(["StartReportJob", "StartBackupJob"]) == ["StartReportJob"]
    assert iam_actions.unruled(["Brand-new", "CreateUser", "RegisterResource"]) == ["Brand-new"]


# ------------------------------------------------------------------------- the scene


@dataclass
class Scene:
    world: World
    rp: jobs.RecoveryPoint
    backup_job_id: str
    restore_job_id: str
    resource_arn: str
    main_arn: str
    other_arn: str
    copy_job_id: str = ""

    def params(self, name: str, category: str) -> dict[str, Any]:
        """Parameters naming this scene's objects, the way the API parses them."""
        if category == VAULT:
            out: dict[str, Any] = {"BackupVaultName": "main"}
            if name == "StartBackupJob":
                out["ResourceArn"] = self.resource_arn
            return out
        if category == RP:
            if name == "StartRestoreJob":  # it names no vault: the point's vault applies
                target = str(self.world.tmp / "restore-target")
                return {"RecoveryPointArn": self.rp.arn, "Metadata": {"targetPath": target}}
            if name == "ListRecoveryPointContents":
                return {"RecoveryPointArn": self.rp.arn}
            return {"BackupVaultName": "main", "RecoveryPointArn": self.rp.arn}
        if category == JOB:
            if "Backup" in name:
                return {"BackupJobId": self.backup_job_id}
            if "Copy" in name:
                return {"CopyJobId": self.copy_job_id}
            return {"RestoreJobId": self.restore_job_id}
        if category == ARN:
            return {"ResourceArn": self.main_arn}
        if category == PROTECTED:
            return {"ResourceArn": self.resource_arn}
        if category == PLAN:
            return {"BackupPlanId": "plan-1"}
        if category == HOLD:
            return {"LegalHoldId": "hold-1"}
        if category == NEW_RESOURCE:
            return {"ResourceType": "Directory", "Name": "new", "Source": str(self.world.tmp)}
        return {}


def _deny(action: str) -> str:
    statement = {"Sid": "No", "Effect": "Deny", "Principal": "*", "Action": action, "Resource": "*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _set_vault_policy(scene: Scene, vault: str, document: str | None) -> None:
    world = scene.world
    if document is not None:
        iam.put_vault_access_policy(world.deps, world.root, vault, document)
        return
    iam.delete_vault_access_policy(world.deps, world.root, vault)


def _identity(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    world = World(tmp_path_factory.mktemp("authz"), FakeClock(datetime(2026, 1, 1, tzinfo=UTC)))
    main = world.vault("main")
    other = world.vault("other")
    rp = world.backup("main", None)
    job = restore_jobs.start(
        world.deps,
        world.root,
        recovery_point_arn=rp.arn,
        metadata={"targetPath": str(world.tmp / "restored")},
    )
    copy = copy_jobs.start(
        world.deps, world.root, copy_jobs.StartRequest(rp.arn, "main", str(other["arn"]))
    )
    world.user("limited")
    world.other_account()
    yield Scene(
        world,
        rp,
        str(rp.source_job_id),
        str(job.restore_job_id),
        str(rp.resource_arn),
        str(main["arn"]),
        str(other["arn"]),
        copy.copy_job_id,
    )
    world.deps.engine.dispose()


def _authorize(scene: Scene, who: Caller, name: str, category: str) -> None:
    world = scene.world
    who = world.caller(who.principal_arn)
    authorization.authorize_operation(world.deps, who, name, scene.params(name, category))


IMPLEMENTED = sorted(
    [(n, c) for n, c in BACKUP_ROWS.items() if c != NOT_IMPLEMENTED]
    + [
        (n, c)
        for n, c in EXTENSION_ROWS.items()
        if c not in (IAM_USER, AGENT) and n not in BACKUP_ROWS
    ]
)
VAULT_ROWS = [(n, c) for n, c in IMPLEMENTED if c in VAULT_BOUND]


@pytest.mark.parametrize(("name", "category"), VAULT_ROWS, ids=[n for n, _ in VAULT_ROWS])
def test_the_vault_policy_of_the_named_vault_decides(
    scene: Scene, name: str, category: str
) -> None:
    world, action = scene.world, f"backup:{name}"
    _set_vault_policy(scene, "main", None)
    _set_vault_policy(scene, "other", _deny(action))
    _authorize(scene, world.root, name, category)  # another vault's Deny: not this call's
    _set_vault_policy(scene, "other", None)
    _set_vault_policy(scene, "main", _deny(action))
    try:
        with pytest.raises(authorization.AccessDenied) as err:
            _authorize(scene, world.root, name, category)
        assert f"perform: {action} on resource" in str(err.value)
        assert "explicit deny in a resource-based policy" in str(err.value)
    finally:
        _set_vault_policy(scene, "main", None)


OTHER_ROWS = [(n, c) for n, c in IMPLEMENTED if c not in VAULT_BOUND]


@pytest.mark.parametrize(("name", "category"), OTHER_ROWS, ids=[n for n, _ in OTHER_ROWS])
def test_rows_without_a_vault_do_not_consult_a_vault_policy(
    scene: Scene, name: str, category: str
) -> None:
    world = scene.world
    world_params = scene.params(name, category)
    resource, vault = authorization.resource_for(world.deps, world.root, name, world_params)
    assert vault is None
    expected = {
        PROTECTED: scene.resource_arn,
        PLAN: f"arn:aws:backup:{REGION}:{ACCOUNT}:backup-plan:plan-1",
        HOLD: f"arn:aws:backup:{REGION}:{ACCOUNT}:legal-hold:hold-1",
        ACCOUNT_WIDE: "*",
        NEW_RESOURCE: resources.resource_arn(REGION, ACCOUNT, "Directory", "new"),
    }
    assert resource == expected[category]


@pytest.mark.parametrize(("name", "category"), IMPLEMENTED, ids=[n for n, _ in IMPLEMENTED])
def test_an_identity_policy_user_needs_the_action(scene: Scene, name: str, category: str) -> None:
    world, action = scene.world, f"backup:{name}"
    limited = world.caller(iam.user_arn(ACCOUNT, "limited"))
    allow_all = {"Effect": "Allow", "Action": "backup:*", "Resource": "*"}
    iam.put_user_policy(world.deps, world.root, "limited", "p", _identity(allow_all))
    _authorize(scene, limited, name, category)
    without = {"Effect": "Allow", "NotAction": action, "Resource": "*"}
    iam.put_user_policy(world.deps, world.root, "limited", "p", _identity(without))
    with pytest.raises(authorization.AccessDenied, match="because no identity-based policy"):
        _authorize(scene, limited, name, category)
    deny = {"Effect": "Deny", "Action": action, "Resource": "*"}
    iam.put_user_policy(world.deps, world.root, "limited", "p", _identity(allow_all, deny))
    with pytest.raises(authorization.AccessDenied, match="explicit deny in an identity-based"):
        _authorize(scene, limited, name, category)


# ------------------------------------------------------------- resolution, in detail


def test_recovery_points_and_jobs_resolve_to_their_vault(scene: Scene) -> None:
    world = scene.world

    def resolved(name: str, params: dict[str, Any], who: Caller | None = None) -> object:
        return authorization.resource_for(world.deps, who or world.root, name, params)

    rp = scene.rp.arn
    assert resolved("StartRestoreJob", {"RecoveryPointArn": rp}) == (rp, scene.main_arn)
    assert resolved("ListRecoveryPointContents", {"RecoveryPointArn": rp}) == (rp, scene.main_arn)
    # the catalog decides, not the name the caller gives
    wrong_name = {"BackupVaultName": "other", "RecoveryPointArn": rp}
    assert resolved("DescribeRecoveryPoint", wrong_name) == (rp, scene.main_arn)
    tagged = resolved("TagResource", {"ResourceArn": rp})
    assert tagged == (rp, scene.main_arn)
    jobs = (
        resolved("DescribeBackupJob", {"BackupJobId": scene.backup_job_id}),
        resolved("StopBackupJob", {"BackupJobId": scene.backup_job_id}),
        resolved("DescribeRestoreJob", {"RestoreJobId": scene.restore_job_id}),
        resolved("GetRestoreJobMetadata", {"RestoreJobId": scene.restore_job_id}),
    )
    assert set(jobs) == {(scene.main_arn, scene.main_arn)}


def test_foreign_ids_answer_like_unknown_ones(scene: Scene) -> None:
    """Another account's job ids resolve like unknown ids (``*``, no vault: the service
    then answers NotFound for both); another account's recovery point ARN is refused
    the same whether the point exists or not, until that vault's policy allows."""
    world = scene.world
    other = world.caller(f"arn:aws:iam::{OTHER_ACCOUNT}:root")
    for params, name in (
        ({"BackupJobId": scene.backup_job_id}, "DescribeBackupJob"),
        ({"RestoreJobId": scene.restore_job_id}, "DescribeRestoreJob"),
    ):
        unknown = {k: "00000000-0000-0000-0000-000000000000" for k in params}
        assert authorization.resource_for(world.deps, other, name, params) == ("*", None)
        assert authorization.resource_for(world.deps, other, name, unknown) == ("*", None)
    ghost = scene.rp.arn.rsplit(":", 1)[0] + ":00000000-0000-0000-0000-000000000000"
    messages = []
    for arn in (scene.rp.arn, ghost):
        with pytest.raises(authorization.AccessDenied) as err:
            authorization.authorize_operation(
                world.deps, other, "StartRestoreJob", {"RecoveryPointArn": arn}
            )
        messages.append(str(err.value).replace(arn, "<arn>"))
    assert messages[0] == messages[1] and "no resource-based policy" in messages[0]
    allow_other = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
        "Action": "backup:ListRecoveryPointContents",
        "Resource": "*",
    }
    _set_vault_policy(scene, "main", _identity(allow_other))
    try:
        params = {"RecoveryPointArn": scene.rp.arn}
        authorization.authorize_operation(world.deps, other, "ListRecoveryPointContents", params)
        with pytest.raises(authorization.AccessDenied):
            authorization.authorize_operation(world.deps, other, "StartRestoreJob", params)
    finally:
        _set_vault_policy(scene, "main", None)


# --------------------------------------------------------------- snowvault:Path


def _path_user(scene: Scene, action: str, pattern: str) -> Caller:
    world = scene.world
    confined = {
        "Effect": "Allow",
        "Action": action,
        "Resource": "*",
        "Condition": {"StringLike": {"snowvault:Path": pattern}},
    }
    iam.put_user_policy(world.deps, world.root, "limited", "p", _identity(confined))
    return world.caller(iam.user_arn(ACCOUNT, "limited"))


def _refused(scene: Scene, who: Caller, name: str, params: dict[str, Any]) -> bool:
    try:
        authorization.authorize_operation(scene.world.deps, who, name, params)
    except authorization.AccessDenied:
        return True
    return False


def test_snowvault_path_confines_restores_to_a_prefix(scene: Scene) -> None:
    base = Path(scene.world.tmp).resolve()
    (base / "restores").mkdir(exist_ok=True)
    (base / "elsewhere").mkdir(exist_ok=True)
    link = base / "restores" / "link"
    if not link.exists():
        link.symlink_to(base / "elsewhere")
    who = _path_user(scene, "backup:StartRestoreJob", f"{base}/restores/*")

    def refused(target: str) -> bool:
        params = {"RecoveryPointArn": scene.rp.arn, "Metadata": {"targetPath": target}}
        return _refused(scene, who, "StartRestoreJob", params)

    assert not refused(f"{base}/restores/a")
    assert not refused(f"{base}/restores//b/../c/")
    assert refused(f"{base}/elsewhere/a")
    assert refused(f"{base}/restores/../elsewhere/a")  # `..` is resolved first
    assert refused(f"{base}/restores/link/a")  # so are symlinks
    assert refused("relative/restores/a")  # no valid path: no key, the condition fails
    assert refused(f"{base}/restores/a\x00b")
    assert refused(f"{base}/restores/\ud800")  # a lone surrogate: no path, no crash
    params = {"RecoveryPointArn": scene.rp.arn, "Metadata": {}}
    assert _refused(scene, who, "StartRestoreJob", params)


def test_snowvault_path_for_register_resource_and_start_backup_job(scene: Scene) -> None:
    world = scene.world
    base = Path(world.tmp).resolve()
    source = Path(scene.world.tmp) / "src1"  # the scene's registered resource
    who = _path_user(scene, "backup:RegisterResource", f"{base}/src*")

    def register(src: str) -> bool:
        params = {"ResourceType": "Directory", "Name": "n", "Source": src}
        return _refused(scene, who, "RegisterResource", params)

    assert not register(str(source))
    assert register(str(base / "elsewhere"))
    assert register(f"{base}/src1/../elsewhere")
    start = {"BackupVaultName": "main", "ResourceArn": scene.resource_arn}
    who = _path_user(scene, "backup:StartBackupJob", f"{base}/src1")
    assert not _refused(scene, who, "StartBackupJob", start)
    who = _path_user(scene, "backup:StartBackupJob", f"{base}/restores/*")
    assert _refused(scene, who, "StartBackupJob", start)
    target = authorization.target_for
    with world.deps.engine.connect() as conn:
        assert target(conn, world.root, "StartBackupJob", start).context == {
            authorization.PATH_KEY: str(source.resolve())
        }
        unknown = {"BackupVaultName": "main", "ResourceArn": scene.resource_arn + "-gone"}
        assert target(conn, world.root, "StartBackupJob", unknown).context == {}
