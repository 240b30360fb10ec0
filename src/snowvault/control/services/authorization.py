"""The one authorization check every API operation passes before it does anything.

``authorize(deps, caller, "backup:DeleteRecoveryPoint", rp_arn, vault_arn=vault_arn)``
loads the caller's principal and identity policies and the vault's access policy (the
resource policy: it governs the vault and every recovery point and job in it), evaluates
with :func:`snowvault.control.model.iam.evaluate`, and raises :class:`AccessDenied`
(AWS's AccessDeniedException, 403, naming the action and the resource) when refused.

The API calls :func:`authorize_operation` once per request, from the operation name and
its parsed parameters. :data:`OPERATIONS` says, for every operation the API serves (AWS
Backup and the extension API), what it is evaluated against, and :func:`target_for`
looks that up in the catalog:

- ``vault``: the vault ``BackupVaultName`` names, in the caller's account (the services
  resolve names there too); resource = the vault ARN.
- ``recovery-point``: the vault the catalog holds the point ``RecoveryPointArn`` in, in
  whatever account the ARN names (cross-account: that vault's policy AND the caller's
  identity policy must allow); resource = the point's ARN. A point the catalog does not
  know is evaluated against the vault the request names (or none) in the ARN's account,
  so a foreign ARN is refused the same whether it exists or not.
- ``backup-job`` / ``restore-job`` / ``copy-job``: the vault of the caller's job
  ``BackupJobId`` / ``RestoreJobId`` / ``CopyJobId`` (a restore or copy job: its source
  recovery point's vault); resource = that vault's ARN. An id the caller's account
  does not have is ``*`` with no vault policy,
  like any account-wide call (the service then answers ResourceNotFoundException), so
  another account's job ids are indistinguishable from unknown ones.
- ``resource-arn``: ``ResourceArn``; a vault ARN or a recovery point ARN is resolved as
  above (its vault's policy applies), anything else (a plan, a protected resource) is
  evaluated on its own ARN with no resource policy.
- ``plan`` / ``legal-hold``: the plan / legal hold ARN, no resource policy.
- ``new-resource``: RegisterResource, the ARN the resource will have.
- ``account``: ``*`` (account-wide: lists, settings, templates, creating plans/holds).
- ``sns-topic``: the SNS topic ``TopicArn`` names (or a ``SubscriptionArn``'s topic, or
  CreateTopic's ``Name`` in the caller's account); no resource policy (``sns:<Action>``).

An operation missing from :data:`OPERATIONS` is refused (fail closed), and a test fails.
KMS operations go through the same function with ``service="kms"``: those that do not
name a key (CreateKey, ListKeys, ListAliases, GenerateRandom, ListRetirableGrants) and the
alias operations are decided by identity policies on the key or alias ARN; those that name
a key (:data:`KMS_KEY_OPERATIONS`) are decided by :func:`authorize_key`, which the key
service calls once it has resolved the key (from a KeyId, or from a ciphertext's header)
and knows the request's encryption context: KMS's own evaluation of key policy, identity
policies and grants (``control.model.kms.key_access``). RetireGrant is decided by the
grant itself (its retiring principal, grantee or issuing account). Services ask
:func:`allowed` for second questions, such as whether the
caller may bypass a governance lock.

Condition keys given to every policy: aws:PrincipalArn, aws:PrincipalAccount,
aws:SourceIp (when known), aws:CurrentTime and aws:EpochTime (``caller.now``); and
``snowvault:Path`` (:data:`PATH_KEY`), the host path a call will read or write: the
``Source`` of RegisterResource (Directory, SQLite, BlockDevice),
``Metadata.targetPath`` (or PostgreSQL's ``targetDirectory``) of StartRestoreJob, and the
registered source of such a resource in StartBackupJob. On the server's
host it is resolved with ``os.path.realpath`` (symlinks and ``..``) as the host-path rule
sees it. On an agent's host (a resource registered with ``WorkerLabel agent:HOST``, a
restore that host's agent will run) it is only folded lexically (``.``, ``..``, ``//``):
the server's file system says nothing about that host, and resolving there would let a
symlink on the server change what the condition sees; the host's symlinks are confined
by the agent's own ``--allow-path`` (resolved on the host). A call that names no valid
absolute path has no ``snowvault:Path``, so a condition on it does not hold.

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy.engine import Connection

from snowvault.control import catalog
from snowvault.control.model import agent_hosts, host_paths, iam
from snowvault.control.model import kms as kms_rules
from snowvault.control.services.base import Caller, Deps
from snowvault.control.services.errors import AccessDenied
from snowvault.core import arn as arns
from snowvault.core.errors import InvalidInput, NotFound

PATH_KEY = "snowvault:Path"
"""The IAM condition key holding the resolved host path a call reads or writes."""

PATH_RESOURCE_TYPES = frozenset({"Directory", "SQLite", "BlockDevice"})
"""Resource types whose ``Source`` is a host path (the ``snowvault:Path`` of
RegisterResource and StartBackupJob)."""
RESTORE_PATH_KEYS = ("targetPath", "TargetPath", "targetDirectory")
"""Restore Metadata naming the host path a restore writes (the first one present)."""
"""Resource types whose ``Source`` is a host path."""


Kind = Literal[
    "vault",
    "recovery-point",
    "backup-job",
    "restore-job",
    "copy-job",
    "resource-arn",
    "plan",
    "legal-hold",
    "new-resource",
    "account",
    "sns-topic",
    "agent",
]

OPERATIONS: Mapping[str, Kind] = {
    # AWS Backup: vaults
    "CreateBackupVault": "vault",
    "DescribeBackupVault": "vault",
    "DeleteBackupVault": "vault",
    "PutBackupVaultAccessPolicy": "vault",
    "GetBackupVaultAccessPolicy": "vault",
    "DeleteBackupVaultAccessPolicy": "vault",
    "PutBackupVaultLockConfiguration": "vault",
    "DeleteBackupVaultLockConfiguration": "vault",
    "ListRecoveryPointsByBackupVault": "vault",
    "ListProtectedResourcesByBackupVault": "vault",
    "StartBackupJob": "vault",
    # recovery points (-> their vault)
    "DescribeRecoveryPoint": "recovery-point",
    "DeleteRecoveryPoint": "recovery-point",
    "DisassociateRecoveryPointFromParent": "recovery-point",
    "UpdateRecoveryPointLifecycle": "recovery-point",
    "GetRecoveryPointRestoreMetadata": "recovery-point",
    "StartRestoreJob": "recovery-point",
    "StartCopyJob": "recovery-point",
    # jobs (-> their vault)
    "DescribeBackupJob": "backup-job",
    "StopBackupJob": "backup-job",
    "DescribeRestoreJob": "restore-job",
    "GetRestoreJobMetadata": "restore-job",
    "DescribeCopyJob": "copy-job",
    # by ARN: vault, recovery point, plan or protected resource
    "TagResource": "resource-arn",
    "UntagResource": "resource-arn",
    "ListTags": "resource-arn",
    "DescribeProtectedResource": "resource-arn",
    "ListRecoveryPointsByResource": "resource-arn",
    "ListRestoreJobsByProtectedResource": "resource-arn",
    # plans and selections
    "GetBackupPlan": "plan",
    "UpdateBackupPlan": "plan",
    "DeleteBackupPlan": "plan",
    "ListBackupPlanVersions": "plan",
    "ExportBackupPlanTemplate": "plan",
    "CreateBackupSelection": "plan",
    "GetBackupSelection": "plan",
    "DeleteBackupSelection": "plan",
    "ListBackupSelections": "plan",
    # legal holds
    "GetLegalHold": "legal-hold",
    "CancelLegalHold": "legal-hold",
    "ListRecoveryPointsByLegalHold": "legal-hold",
    # account-wide
    "CreateBackupPlan": "account",
    "ListBackupPlans": "account",
    "GetBackupPlanFromJSON": "account",
    "GetBackupPlanFromTemplate": "account",
    "ListBackupPlanTemplates": "account",
    "CreateLegalHold": "account",
    "ListLegalHolds": "account",
    "ListBackupVaults": "account",
    "ListBackupJobs": "account",
    "ListBackupJobSummaries": "account",
    "ListRestoreJobs": "account",
    "ListCopyJobs": "account",
    "ListCopyJobSummaries": "account",
    "ListProtectedResources": "account",
    "DescribeGlobalSettings": "account",
    "DescribeRegionSettings": "account",
    "UpdateRegionSettings": "account",
    "GetSupportedResourceTypes": "account",
    # the extension API (backup:<Action>; its IAM actions are iam:<Action>, see the API)
    "RegisterResource": "new-resource",
    "ListResources": "account",
    "DescribeResource": "resource-arn",
    "DeregisterResource": "resource-arn",
    "ListRecoveryPointContents": "recovery-point",
    "PreviewSelection": "plan",
    "ExportRecoveryKey": "vault",
    # vault notifications (issue 16)
    "PutBackupVaultNotifications": "vault",
    "GetBackupVaultNotifications": "vault",
    "DeleteBackupVaultNotifications": "vault",
    # the SNS subset (sns:<Action>): the topic ARN, or * for ListTopics
    "CreateTopic": "sns-topic",
    "DeleteTopic": "sns-topic",
    "ListTopics": "account",
    "Subscribe": "sns-topic",
    "ConfirmSubscription": "sns-topic",
    "ListSubscriptionsByTopic": "sns-topic",
    "Unsubscribe": "sns-topic",
    "Publish": "sns-topic",
    # the audit trail (cloudtrail:LookupEvents, account-wide)
    "LookupEvents": "account",
    # agents (issue 13; snowvault:<Action>, docs/design/agents.md): enrolment is
    # account-wide; the agent operations are the agent principal's built-in permissions
    "EnrollAgent": "account",
    "RevokeAgent": "account",
    "ListAgents": "account",
    "AgentHello": "agent",
    "AgentClaimJob": "agent",
    "AgentHeartbeat": "agent",
    "AgentHasBlobs": "agent",
    "AgentPutBlobs": "agent",
    "AgentPutManifest": "agent",
    "AgentFailJob": "agent",
    "AgentReadBlobs": "agent",
    "AgentFinishRestore": "agent",
}

AGENT_PATH = "/snowvault-agent/"
"""The IAM path of agent principals (``arn:aws:iam::ACCOUNT:user/snowvault-agent/HOST``);
no other principal can have it (a user name holds no ``/``)."""

AGENT_OPERATIONS = frozenset(
    f"snowvault:{name}" for name, kind in OPERATIONS.items() if kind == "agent"
)
"""An agent principal's built-in permissions, and all of them: an agent may call these
and nothing else (whatever a vault access policy says), and only agents may call them."""


@dataclass(frozen=True)
class Target:
    """What one call is evaluated against: the ARN the policies' ``Resource`` elements
    match, the vault whose access policy is the resource policy (None: no resource
    policy), and the call's own condition keys (such as ``snowvault:Path``)."""

    resource_arn: str
    vault_arn: str | None = None
    context: Mapping[str, iam.ContextValue] = field(default_factory=dict)


_AGENT_POLICY = iam.parse_policy(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": sorted(AGENT_OPERATIONS), "Resource": "*"}],
    },
    "identity",
)


def _agent_gate(row: Mapping[str, Any], action: str) -> bool:
    """Whether the principal ``row`` is an agent; :class:`AccessDenied` when an agent
    asks for anything but the agent operations, or anyone else asks for one of them.
    Decided before any policy is read, so no policy can widen an agent's rights."""
    is_agent = bool(row["path"] == AGENT_PATH)
    if is_agent and action not in AGENT_OPERATIONS:
        raise AccessDenied(
            detail=f"User: {row['arn']} is not authorized to perform: {action} "
            "(an agent may only call the agent operations)"
        )
    if not is_agent and action in AGENT_OPERATIONS:
        raise AccessDenied(
            detail=f"User: {row['arn']} is not authorized to perform: {action} "
            "(only an enrolled agent may)"
        )
    return is_agent


def _principal(
    conn: Connection, caller: Caller, action: str
) -> tuple[iam.Principal, list[iam.Policy]]:
    try:
        row = catalog.accounts.get_principal(conn, caller.principal_arn)
    except NotFound:
        raise AccessDenied(detail=f"unknown principal {caller.principal_arn}") from None
    principal = iam.Principal(row["arn"], row["account_id"], bool(row["is_root"]))
    if _agent_gate(row, action):
        return principal, [_AGENT_POLICY]
    if principal.is_root:
        return principal, []
    documents = catalog.accounts.get_user_policies(conn, row["arn"])
    return principal, [iam.parse_policy(doc, "identity") for doc in documents.values()]


def vault_policy(conn: Connection, vault_arn: str | None) -> iam.Policy | None:
    """The vault's access policy, parsed; None without a vault or a policy."""
    if vault_arn is None:
        return None
    try:
        vault = catalog.vaults.get_by_arn(conn, vault_arn)
    except NotFound:
        return None
    document = vault["access_policy"]
    return None if document is None else iam.parse_policy(document, "resource")


def _request(caller: Caller, principal: iam.Principal, action: str, target: Target) -> iam.Request:
    account = caller.account_id
    if target.resource_arn != "*":
        account = arns.Arn.parse(target.resource_arn).account or caller.account_id
    context: dict[str, iam.ContextValue] = dict(target.context)
    if caller.source_ip:
        context["aws:SourceIp"] = caller.source_ip
    return iam.Request(principal, action, target.resource_arn, account, context, caller.now)


def _decide(
    conn: Connection, caller: Caller, action: str, target: Target
) -> tuple[iam.Request, iam.Decision]:
    principal, identity = _principal(conn, caller, action)
    resource = vault_policy(conn, target.vault_arn)
    request = _request(caller, principal, action, target)
    return request, iam.evaluate(request, identity, resource)


def _raise_unless_allowed(request: iam.Request, decision: iam.Decision) -> None:
    if not decision.allowed:
        raise AccessDenied(detail=iam.access_denied_message(request, decision))


def decide(
    deps: Deps,
    caller: Caller,
    action: str,
    resource_arn: str,
    *,
    vault_arn: str | None = None,
    context: Mapping[str, iam.ContextValue] | None = None,
) -> tuple[iam.Request, iam.Decision]:
    """The evaluation itself: the request as evaluated and the decision."""
    target = Target(resource_arn, vault_arn, dict(context or {}))
    with catalog.db.read_transaction(deps.engine) as conn:
        return _decide(conn, caller, action, target)


def allowed(
    deps: Deps, caller: Caller, action: str, resource_arn: str, *, vault_arn: str | None = None
) -> bool:
    try:
        return decide(deps, caller, action, resource_arn, vault_arn=vault_arn)[1].allowed
    except AccessDenied:
        return False


def authorize(
    deps: Deps,
    caller: Caller,
    action: str,
    resource_arn: str,
    *,
    vault_arn: str | None = None,
    context: Mapping[str, iam.ContextValue] | None = None,
) -> None:
    """Raise :class:`AccessDenied` unless ``caller`` may do ``action`` on ``resource_arn``."""
    _raise_unless_allowed(
        *decide(deps, caller, action, resource_arn, vault_arn=vault_arn, context=context)
    )


# --------------------------------------------------------------------------- operations


def _text(params: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = params.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _vault_arn(caller: Caller, name: str, account: str | None = None) -> str:
    if name.startswith("arn:"):
        return name
    return arns.build("backup", caller.region, account or caller.account_id, f"backup-vault:{name}")


def host_path(path: object, *, agent_host: bool = False) -> str | None:
    """``path`` resolved as the host-path rule resolves it (``os.path.realpath``: symlinks
    and ``..``), or None when it is not an absolute path string without NUL bytes (the
    service then refuses it itself, naming the problem). A string the file system cannot
    take (a lone surrogate) is None too, not an error.

    ``agent_host``: a path on an agent's host, folded lexically only (``posixpath.normpath``:
    absolute, no ``..`` left to climb out of a prefix, never a look at the server's file
    system), since a server-side symlink must not decide what a condition on that host's
    path sees."""
    try:
        return host_paths.resolve(path, posixpath.normpath if agent_host else os.path.realpath)
    except (host_paths.InvalidHostPath, ValueError):  # UnicodeEncodeError is a ValueError
        return None


def _path_context(path: object, *, agent_host: bool = False) -> dict[str, iam.ContextValue]:
    resolved = host_path(path, agent_host=agent_host)
    return {} if resolved is None else {PATH_KEY: resolved}


def _on_agent_host(worker_label: object) -> bool:
    return isinstance(worker_label, str) and agent_hosts.is_agent_label(worker_label)


def _restores_on_agent(conn: Connection, caller: Caller, rp_arn: str) -> bool:
    """Whether StartRestoreJob of ``rp_arn`` will run on an agent's host: the caller's own
    point of a resource registered on a host of the caller's own account
    (``agent_hosts.restore_label``, as ``restore_jobs._check_metadata`` decides it; any
    other restore runs on the server)."""
    rp = catalog.recovery_points.find(conn, rp_arn)
    if rp is None:
        return False
    resource = catalog.resources.find(conn, rp.resource_arn)
    label = resource["worker_label"] if resource is not None else None
    try:
        chosen = agent_hosts.restore_label(
            label, point_account=rp.account_id, caller_account=caller.account_id
        )
    except InvalidInput:
        return False
    return chosen is not None


def _recovery_point(
    conn: Connection, caller: Caller, rp_arn: str, vault_name: str | None
) -> Target:
    try:
        account = arns.Arn.parse(rp_arn).account
    except InvalidInput:
        return Target(rp_arn)  # evaluating it answers InvalidParameterValue
    rp = catalog.recovery_points.find(conn, rp_arn)
    if rp is not None:
        return Target(rp_arn, rp.backup_vault_arn)
    return Target(rp_arn, _vault_arn(caller, vault_name, account) if vault_name else None)


def _vault(conn: Connection, caller: Caller, params: Mapping[str, Any]) -> Target:
    name = _text(params, "BackupVaultName", "SourceBackupVaultName")
    if name is None:
        return Target("*")
    vault = _vault_arn(caller, name)
    context: dict[str, iam.ContextValue] = {}
    resource_arn = _text(params, "ResourceArn")
    if resource_arn:  # StartBackupJob: the host path a Directory resource reads
        resource = catalog.resources.find(conn, resource_arn)
        if resource is not None and resource["resource_type"] in PATH_RESOURCE_TYPES:
            agent_host = _on_agent_host(resource["worker_label"])
            context = _path_context(resource["source"], agent_host=agent_host)
    return Target(vault, vault, context)


def _rp(conn: Connection, caller: Caller, params: Mapping[str, Any]) -> Target:
    rp_arn = _text(params, "RecoveryPointArn")
    if rp_arn is None:
        return Target("*")
    target = _recovery_point(conn, caller, rp_arn, _text(params, "BackupVaultName"))
    metadata = params.get("Metadata")
    if isinstance(metadata, Mapping):  # StartRestoreJob: the host path it writes
        path = next((metadata[k] for k in RESTORE_PATH_KEYS if metadata.get(k)), None)
        agent_host = _restores_on_agent(conn, caller, rp_arn)
        context = _path_context(path, agent_host=agent_host)
        return Target(target.resource_arn, target.vault_arn, context)
    return target


def _job_vault(target_vault: str | None) -> Target:
    return Target("*") if target_vault is None else Target(target_vault, target_vault)


def _job(params: Mapping[str, Any], key: str, get: Callable[[str], Any]) -> Target:
    """The vault of the job ``params[key]`` names (``get`` reads it in the caller's
    account); an unknown or foreign id is ``*``, so existence does not leak."""
    job_id = _text(params, key)
    if job_id is None:
        return Target("*")
    try:
        job = get(job_id)
    except NotFound:
        return Target("*")
    return _job_vault(job.backup_vault_arn)


def _backup_job(conn: Connection, caller: Caller, params: Mapping[str, Any]) -> Target:
    account = caller.account_id
    return _job(params, "BackupJobId", lambda i: catalog.jobs.get(conn, i, account_id=account))


def _restore_job(conn: Connection, caller: Caller, params: Mapping[str, Any]) -> Target:
    account = caller.account_id
    return _job(
        params, "RestoreJobId", lambda i: catalog.restore_jobs.get(conn, i, account_id=account)
    )


def _copy_job(conn: Connection, caller: Caller, params: Mapping[str, Any]) -> Target:
    account = caller.account_id
    job = _text(params, "CopyJobId")
    try:
        found = None if job is None else catalog.copy_jobs.get(conn, job, account_id=account)
    except NotFound:
        found = None
    return _job_vault(None if found is None else found.source_backup_vault_arn)


def _by_arn(conn: Connection, caller: Caller, params: Mapping[str, Any]) -> Target:
    resource = _text(params, "ResourceArn")
    if resource is None:
        return Target("*")
    try:
        kind = arns.Arn.parse(resource).resource_type
    except InvalidInput:
        return Target(resource)  # evaluating it answers InvalidParameterValue
    if kind == "backup-vault":
        return Target(resource, resource)
    if kind == "recovery-point":
        return _recovery_point(conn, caller, resource, None)
    return Target(resource)


def _account_arn(caller: Caller, service: str, resource: str) -> str:
    return arns.build(service, caller.region, caller.account_id, resource)


def _plan(conn: Connection, caller: Caller, params: Mapping[str, Any]) -> Target:
    plan = _text(params, "BackupPlanId")
    return Target(_account_arn(caller, "backup", f"backup-plan:{plan}") if plan else "*")


def _legal_hold(conn: Connection, caller: Caller, params: Mapping[str, Any]) -> Target:
    hold = _text(params, "LegalHoldId")
    return Target(_account_arn(caller, "backup", f"legal-hold:{hold}") if hold else "*")


def _sns_topic(conn: Connection, caller: Caller, params: Mapping[str, Any]) -> Target:
    """An SNS topic: ``TopicArn``, a subscription's topic, or (CreateTopic) the ARN
    ``Name`` will have in the caller's account."""
    topic = _text(params, "TopicArn")
    subscription = _text(params, "SubscriptionArn")
    name = _text(params, "Name")
    if topic is None and subscription is not None:
        topic = subscription.rpartition(":")[0] or None
    if topic is None and name is not None and ":" not in name:
        topic = _account_arn(caller, "sns", name)
    return Target(topic or "*")


def _new_resource(conn: Connection, caller: Caller, params: Mapping[str, Any]) -> Target:
    kind, name = _text(params, "ResourceType"), _text(params, "Name")
    arn = "*"
    if kind and name and ":" not in name:
        arn = _account_arn(caller, "snowvault", f"{kind.lower()}/{name}")
    context: dict[str, iam.ContextValue] = {}
    if kind in PATH_RESOURCE_TYPES:
        agent_host = _on_agent_host(params.get("WorkerLabel"))
        context = _path_context(params.get("Source"), agent_host=agent_host)
    return Target(arn, None, context)


def _account(conn: Connection, caller: Caller, params: Mapping[str, Any]) -> Target:
    return Target("*")


_RESOLVERS = {
    "vault": _vault,
    "recovery-point": _rp,
    "backup-job": _backup_job,
    "restore-job": _restore_job,
    "copy-job": _copy_job,
    "resource-arn": _by_arn,
    "plan": _plan,
    "legal-hold": _legal_hold,
    "new-resource": _new_resource,
    "account": _account,
    "sns-topic": _sns_topic,
    "agent": _account,
}


def _kms_resource(caller: Caller, params: Mapping[str, Any]) -> str:
    key = params.get("KeyId") or params.get("TargetKeyId")
    if not key:
        alias = params.get("AliasName")
        return arns.build("kms", caller.region, caller.account_id, alias) if alias else "*"
    key = str(key)
    if key.startswith("arn:"):
        return key
    return arns.build(
        "kms", caller.region, caller.account_id, key if key.startswith("alias/") else f"key/{key}"
    )


KMS_KEY_OPERATIONS = frozenset(
    {
        "DescribeKey", "UpdateKeyDescription", "GetKeyPolicy", "PutKeyPolicy",
        "ListKeyPolicies", "EnableKey", "DisableKey", "EnableKeyRotation",
        "DisableKeyRotation", "GetKeyRotationStatus", "RotateKeyOnDemand", "ListKeyRotations",
        "ScheduleKeyDeletion", "CancelKeyDeletion", "Encrypt", "Decrypt", "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext", "ReEncrypt", "CreateGrant", "ListGrants",
        "RevokeGrant", "RetireGrant", "TagResource", "UntagResource", "ListResourceTags",
    }
)  # fmt: skip
"""KMS operations that name a key: the key service decides them with :func:`authorize_key`
(ReEncrypt as ReEncryptFrom on the source key and ReEncryptTo on the destination)."""


def _grants(conn: Connection, key_arn: str) -> list[kms_rules.Grant]:
    return [
        kms_rules.Grant(
            str(row["grantee_principal"]),
            frozenset(json.loads(row["operations"])),
            json.loads(row["constraints"]) if row["constraints"] else None,
        )
        for row in catalog.kms.grants_of(conn, key_arn)
    ]


def authorize_key(
    conn: Connection,
    caller: Caller,
    action: str,
    key: Mapping[str, Any],
    encryption_context: Mapping[str, str] | None = None,
) -> None:
    """Raise :class:`AccessDenied` unless ``caller`` may do ``kms:<action>`` on ``key``
    (a catalog row), as KMS decides: the key policy (the stored one, or AWS's default),
    the caller's identity policies and the key's grants (``kms_rules.key_access``).
    ``encryption_context``: the request's, for an operation that takes one (``{}`` when
    none was sent), else None. The server's own use of vault keys does not come here."""
    principal, identity = _principal(conn, caller, f"kms:{action}")
    document = key["policy"] or kms_rules.default_policy(str(key["account_id"]))
    policy = iam.parse_policy(document, "resource")
    request = _request(caller, principal, f"kms:{action}", Target(str(key["arn"])))
    allowed, why = kms_rules.key_access(
        request, identity, policy, _grants(conn, str(key["arn"])), encryption_context
    )
    if not allowed:
        raise AccessDenied(
            detail=f"User: {caller.principal_arn} is not authorized to perform: kms:{action} "
            f"on resource: {key['arn']} {why}"
        )


def target_for(
    conn: Connection,
    caller: Caller,
    operation: str,
    params: Mapping[str, Any],
    service: str = "backup",
) -> Target:
    """What ``<service>:<operation>`` with ``params`` is evaluated against (module doc);
    :class:`AccessDenied` for an operation :data:`OPERATIONS` does not know."""
    if service == "kms":
        return Target(_kms_resource(caller, params))
    kind = OPERATIONS.get(operation)
    if kind is None:
        raise AccessDenied(
            detail=f"{service}:{operation} has no authorization rule, so it is refused"
        )
    return _RESOLVERS[kind](conn, caller, params)


def resource_for(
    deps: Deps,
    caller: Caller,
    operation: str,
    params: Mapping[str, Any],
    service: str = "backup",
) -> tuple[str, str | None]:
    """(resource ARN, vault ARN whose access policy applies) for one operation call."""
    with catalog.db.read_transaction(deps.engine) as conn:
        target = target_for(conn, caller, operation, params, service)
    return target.resource_arn, target.vault_arn


def authorize_operation(
    deps: Deps,
    caller: Caller,
    operation: str,
    params: Mapping[str, Any],
    service: str = "backup",
) -> None:
    """The API's hook: ``<service>:<operation>`` on what the parameters name, resolved
    and evaluated in one catalog read."""
    if service == "kms" and operation in KMS_KEY_OPERATIONS:
        with catalog.db.read_transaction(deps.engine) as conn:  # an agent: refused now,
            _principal(conn, caller, f"kms:{operation}")  # before the key is looked up
        return  # the key service decides with the key in hand (authorize_key)
    with catalog.db.read_transaction(deps.engine) as conn:
        target = target_for(conn, caller, operation, params, service)
        request, decision = _decide(conn, caller, f"{service}:{operation}", target)
    _raise_unless_allowed(request, decision)
