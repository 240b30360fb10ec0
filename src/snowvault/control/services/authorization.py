"""The one authorization check every API operation passes before it does anything.

``authorize(deps, caller, "backup:DeleteRecoveryPoint", rp_arn, vault_arn=vault_arn)``
loads the caller's principal and identity policies and the vault's access policy (the
resource policy: it governs the vault and every recovery point in it), evaluates with
:func:`snowvault.control.model.iam.evaluate`, and raises :class:`AccessDenied` (AWS's
AccessDeniedException, 403, naming the action and the resource) when refused.

The API calls :func:`authorize_operation` once per request, from the operation name and
its parsed parameters (:func:`resource_for` picks the resource ARN the way AWS's service
authorization reference does); KMS operations go through the same function with
``service="kms"``. Services ask :func:`allowed` for second questions, such as whether
the caller may bypass a governance lock.

Condition keys given to every policy: aws:PrincipalArn, aws:PrincipalAccount,
aws:SourceIp (when known), aws:CurrentTime and aws:EpochTime (``caller.now``).

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Connection

from snowvault.control import catalog
from snowvault.control.model import iam
from snowvault.control.services.base import Caller, Deps
from snowvault.core import arn as arns
from snowvault.core.errors import InvalidInput, NotFound, PermissionDenied


class AccessDenied(PermissionDenied):
    """{detail}"""


def _principal(conn: Connection, caller: Caller) -> tuple[iam.Principal, list[iam.Policy]]:
    try:
        row = catalog.accounts.get_principal(conn, caller.principal_arn)
    except NotFound:
        raise AccessDenied(detail=f"unknown principal {caller.principal_arn}") from None
    principal = iam.Principal(row["arn"], row["account_id"], bool(row["is_root"]))
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


def _request(
    caller: Caller, principal: iam.Principal, action: str, resource_arn: str
) -> iam.Request:
    account = caller.account_id
    if resource_arn != "*":
        account = arns.Arn.parse(resource_arn).account or caller.account_id
    context: dict[str, iam.ContextValue] = {}
    if caller.source_ip:
        context["aws:SourceIp"] = caller.source_ip
    return iam.Request(principal, action, resource_arn, account, context, caller.now)


def decide(
    deps: Deps, caller: Caller, action: str, resource_arn: str, *, vault_arn: str | None = None
) -> tuple[iam.Request, iam.Decision]:
    """The evaluation itself: the request as evaluated and the decision."""
    with catalog.db.read_transaction(deps.engine) as conn:
        principal, identity = _principal(conn, caller)
        resource = vault_policy(conn, vault_arn)
    request = _request(caller, principal, action, resource_arn)
    return request, iam.evaluate(request, identity, resource)


def allowed(
    deps: Deps, caller: Caller, action: str, resource_arn: str, *, vault_arn: str | None = None
) -> bool:
    try:
        return decide(deps, caller, action, resource_arn, vault_arn=vault_arn)[1].allowed
    except AccessDenied:
        return False


def authorize(
    deps: Deps, caller: Caller, action: str, resource_arn: str, *, vault_arn: str | None = None
) -> None:
    """Raise :class:`AccessDenied` unless ``caller`` may do ``action`` on ``resource_arn``."""
    request, decision = decide(deps, caller, action, resource_arn, vault_arn=vault_arn)
    if not decision.allowed:
        raise AccessDenied(detail=iam.access_denied_message(request, decision))


# --------------------------------------------------------------------------- operations


def _vault_arn(caller: Caller, name: str, account: str | None = None) -> str:
    if name.startswith("arn:"):
        return name
    return arns.build("backup", caller.region, account or caller.account_id, f"backup-vault:{name}")


def _recovery_point(caller: Caller, params: Mapping[str, Any]) -> tuple[str, str | None]:
    rp_arn = str(params["RecoveryPointArn"])
    try:
        account = arns.Arn.parse(rp_arn).account
    except InvalidInput:
        return rp_arn, None
    name = params.get("BackupVaultName") or params.get("SourceBackupVaultName")
    return rp_arn, _vault_arn(caller, str(name), account) if name else None


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


def resource_for(
    caller: Caller, operation: str, params: Mapping[str, Any], service: str = "backup"
) -> tuple[str, str | None]:
    """(resource ARN, vault ARN whose access policy applies) for one operation call."""
    if service == "kms":
        return _kms_resource(caller, params), None
    if params.get("RecoveryPointArn"):
        return _recovery_point(caller, params)
    for key in ("BackupVaultName", "SourceBackupVaultName"):
        if params.get(key):
            vault = _vault_arn(caller, str(params[key]))
            return vault, vault
    if params.get("LegalHoldId"):
        hold = f"legal-hold:{params['LegalHoldId']}"
        return arns.build("backup", caller.region, caller.account_id, hold), None
    if params.get("BackupPlanId"):
        plan = f"backup-plan:{params['BackupPlanId']}"
        return arns.build("backup", caller.region, caller.account_id, plan), None
    resource = params.get("ResourceArn")
    if resource:
        resource = str(resource)
        is_vault = ":backup-vault:" in resource
        return resource, resource if is_vault else None
    return "*", None


def authorize_operation(
    deps: Deps,
    caller: Caller,
    operation: str,
    params: Mapping[str, Any],
    service: str = "backup",
) -> None:
    """The API's hook: ``<service>:<operation>`` on the resource the parameters name."""
    resource, vault = resource_for(caller, operation, params, service)
    authorize(deps, caller, f"{service}:{operation}", resource, vault_arn=vault)
