"""The KMS JSON API subset (``X-Amz-Target: TrentService.*``), over the key service.

    table = bind(app)        # {"CreateKey": callable(ctx, params), ...}

Blobs arrive and leave as bytes (the protocol layer does base64). Key material never
appears here: only ARNs, states and dates. Must not depend on the CLI or web interfaces.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import partial
from typing import Any

from snowvault.app import App
from snowvault.control.services import authorization, kms
from snowvault.interfaces.api.asgi import Handler, RequestContext
from snowvault.interfaces.api.handlers.common import AppHandler, Out, Params, caller, drop_none

MODEL_NAME = "kms"


def key_metadata(key: Mapping[str, Any]) -> Out:
    return drop_none(
        {
            "AWSAccountId": key["account_id"],
            "KeyId": key["key_id"],
            "Arn": key["arn"],
            "CreationDate": key["creation_date"],
            "Enabled": key["key_state"] == kms.ENABLED,
            "Description": key["description"],
            "KeyUsage": key["key_usage"],
            "KeyState": key["key_state"],
            "DeletionDate": key["deletion_date"],
            "Origin": key["origin"],
            "KeyManager": key["key_manager"],
            "CustomerMasterKeySpec": key["key_spec"],
            "KeySpec": key["key_spec"],
            "EncryptionAlgorithms": [kms.ALGORITHM],
            "MultiRegion": False,
            "PendingDeletionWindowInDays": key["pending_window_days"],
        }
    )


def _page(key: str, items: list[Any], marker: str | None) -> Out:
    out: Out = {key: items, "Truncated": marker is not None}
    if marker:
        out["NextMarker"] = marker
    return out


def create_key(app: App, ctx: RequestContext, params: Params) -> Out:
    tags = {t["TagKey"]: t["TagValue"] for t in params.get("Tags", [])}
    key = app.kms.create_key(
        caller(ctx),
        description=params.get("Description", ""),
        key_usage=params.get("KeyUsage"),
        key_spec=params.get("KeySpec") or params.get("CustomerMasterKeySpec"),
        origin=params.get("Origin"),
        tags=tags,
        policy=params.get("Policy"),
        bypass_lockout_check=bool(params.get("BypassPolicyLockoutSafetyCheck")),
    )
    return {"KeyMetadata": key_metadata(key)}


def update_key_description(app: App, ctx: RequestContext, params: Params) -> None:
    app.kms.update_key_description(caller(ctx), params["KeyId"], params["Description"])


def get_key_policy(app: App, ctx: RequestContext, params: Params) -> Out:
    name = params.get("PolicyName")
    policy = app.kms.get_key_policy(caller(ctx), params["KeyId"], name)
    return {"Policy": policy, "PolicyName": kms.POLICY_NAME}


def put_key_policy(app: App, ctx: RequestContext, params: Params) -> None:
    app.kms.put_key_policy(
        caller(ctx),
        params["KeyId"],
        params["Policy"],
        params.get("PolicyName"),
        bypass_lockout_check=bool(params.get("BypassPolicyLockoutSafetyCheck")),
    )


def list_key_policies(app: App, ctx: RequestContext, params: Params) -> Out:
    names, marker = kms.page_of(
        "kms-key-policies",
        app.kms.list_key_policies(caller(ctx), params["KeyId"]),
        key=str,
        limit=params.get("Limit"),
        marker=params.get("Marker"),
    )
    return _page("PolicyNames", names, marker)


def describe_key(app: App, ctx: RequestContext, params: Params) -> Out:
    return {"KeyMetadata": key_metadata(app.kms.describe_key(caller(ctx), params["KeyId"]))}


def list_keys(app: App, ctx: RequestContext, params: Params) -> Out:
    page = app.kms.list_keys(caller(ctx), limit=params.get("Limit"), marker=params.get("Marker"))
    keys = [{"KeyId": k["key_id"], "KeyArn": k["arn"]} for k in page.items]
    return _page("Keys", keys, page.next_token)


def create_alias(app: App, ctx: RequestContext, params: Params) -> None:
    app.kms.create_alias(caller(ctx), params["AliasName"], params["TargetKeyId"])


def delete_alias(app: App, ctx: RequestContext, params: Params) -> None:
    app.kms.delete_alias(caller(ctx), params["AliasName"])


def update_alias(app: App, ctx: RequestContext, params: Params) -> None:
    app.kms.update_alias(caller(ctx), params["AliasName"], params["TargetKeyId"])


def list_aliases(app: App, ctx: RequestContext, params: Params) -> Out:
    page = app.kms.list_aliases(
        caller(ctx),
        key_ref=params.get("KeyId"),
        limit=params.get("Limit"),
        marker=params.get("Marker"),
    )
    aliases = [
        {
            "AliasName": a["alias_name"],
            "AliasArn": f"arn:aws:kms:{a['region']}:{a['account_id']}:{a['alias_name']}",
            "TargetKeyId": a["target_key_arn"].rsplit("/", 1)[-1],
            "CreationDate": a["creation_date"],
            "LastUpdatedDate": a["last_updated_date"],
        }
        for a in page.items
    ]
    return _page("Aliases", aliases, page.next_token)


def enable_key(app: App, ctx: RequestContext, params: Params) -> None:
    app.kms.enable_key(caller(ctx), params["KeyId"])


def disable_key(app: App, ctx: RequestContext, params: Params) -> None:
    app.kms.disable_key(caller(ctx), params["KeyId"])


def enable_key_rotation(app: App, ctx: RequestContext, params: Params) -> None:
    app.kms.enable_key_rotation(caller(ctx), params["KeyId"], params.get("RotationPeriodInDays"))


def disable_key_rotation(app: App, ctx: RequestContext, params: Params) -> None:
    app.kms.disable_key_rotation(caller(ctx), params["KeyId"])


def get_key_rotation_status(app: App, ctx: RequestContext, params: Params) -> Out:
    key = app.kms.rotation_status(caller(ctx), params["KeyId"])
    return drop_none(
        {
            "KeyRotationEnabled": bool(key["rotation_enabled"]),
            "KeyId": key["arn"],
            "RotationPeriodInDays": key["rotation_period_days"]
            if key["rotation_enabled"]
            else None,
            "NextRotationDate": key["next_rotation_date"],
            "OnDemandRotationStartDate": key["on_demand_rotation_start"],
        }
    )


def list_key_rotations(app: App, ctx: RequestContext, params: Params) -> Out:
    rotations, marker = kms.page_of(
        "kms-key-rotations",
        app.kms.list_key_rotations(caller(ctx), params["KeyId"]),
        key=lambda v: f"{v['version']:012d}",  # oldest first
        limit=params.get("Limit"),
        marker=params.get("Marker"),
    )
    items = [
        {"KeyId": v["key_arn"], "RotationDate": v["created_at"], "RotationType": v["rotation_type"]}
        for v in rotations
    ]
    return _page("Rotations", items, marker)


def rotate_key_on_demand(app: App, ctx: RequestContext, params: Params) -> Out:
    return {"KeyId": app.kms.rotate_key_on_demand(caller(ctx), params["KeyId"])["key_id"]}


def schedule_key_deletion(app: App, ctx: RequestContext, params: Params) -> Out:
    key = app.kms.schedule_key_deletion(
        caller(ctx), params["KeyId"], params.get("PendingWindowInDays")
    )
    return {
        "KeyId": key["arn"],
        "DeletionDate": key["deletion_date"],
        "KeyState": key["key_state"],
        "PendingWindowInDays": key["pending_window_days"],
    }


def cancel_key_deletion(app: App, ctx: RequestContext, params: Params) -> Out:
    return {"KeyId": app.kms.cancel_key_deletion(caller(ctx), params["KeyId"])["arn"]}


def encrypt(app: App, ctx: RequestContext, params: Params) -> Out:
    blob, arn = app.kms.encrypt(
        caller(ctx), params["KeyId"], params["Plaintext"], params.get("EncryptionContext")
    )
    return {"CiphertextBlob": blob, "KeyId": arn, "EncryptionAlgorithm": kms.ALGORITHM}


def decrypt(app: App, ctx: RequestContext, params: Params) -> Out:
    plaintext, arn = app.kms.decrypt(
        caller(ctx),
        params["CiphertextBlob"],
        params.get("EncryptionContext"),
        key_ref=params.get("KeyId"),
    )
    return {"Plaintext": plaintext, "KeyId": arn, "EncryptionAlgorithm": kms.ALGORITHM}


def generate_data_key(app: App, ctx: RequestContext, params: Params) -> Out:
    plaintext, blob, arn = app.kms.generate_data_key(
        caller(ctx),
        params["KeyId"],
        number_of_bytes=params.get("NumberOfBytes"),
        key_spec=params.get("KeySpec"),
        context=params.get("EncryptionContext"),
    )
    return {"CiphertextBlob": blob, "Plaintext": plaintext, "KeyId": arn}


def generate_data_key_without_plaintext(app: App, ctx: RequestContext, params: Params) -> Out:
    blob, arn = app.kms.generate_data_key_without_plaintext(
        caller(ctx),
        params["KeyId"],
        number_of_bytes=params.get("NumberOfBytes"),
        key_spec=params.get("KeySpec"),
        context=params.get("EncryptionContext"),
    )
    return {"CiphertextBlob": blob, "KeyId": arn}


def generate_random(app: App, ctx: RequestContext, params: Params) -> Out:
    return {"Plaintext": app.kms.generate_random(params.get("NumberOfBytes"))}


def re_encrypt(app: App, ctx: RequestContext, params: Params) -> Out:
    blob, source, target = app.kms.re_encrypt(
        caller(ctx),
        params["CiphertextBlob"],
        params["DestinationKeyId"],
        source_context=params.get("SourceEncryptionContext"),
        destination_context=params.get("DestinationEncryptionContext"),
        source_ref=params.get("SourceKeyId"),
    )
    return {
        "CiphertextBlob": blob,
        "SourceKeyId": source,
        "KeyId": target,
        "SourceEncryptionAlgorithm": kms.ALGORITHM,
        "DestinationEncryptionAlgorithm": kms.ALGORITHM,
    }


def grant_entry(grant: Mapping[str, Any]) -> Out:
    return drop_none(
        {
            "KeyId": grant["key_arn"],
            "GrantId": grant["grant_id"],
            "Name": grant["name"],
            "CreationDate": grant["creation_date"],
            "GranteePrincipal": grant["grantee_principal"],
            "RetiringPrincipal": grant["retiring_principal"],
            "IssuingAccount": grant["issuing_account"],
            "Operations": json.loads(grant["operations"]),
            "Constraints": json.loads(grant["constraints"]) if grant["constraints"] else None,
        }
    )


def create_grant(app: App, ctx: RequestContext, params: Params) -> Out:
    grant = app.kms.create_grant(
        caller(ctx),
        params["KeyId"],
        params["GranteePrincipal"],
        params["Operations"],
        retiring=params.get("RetiringPrincipal"),
        constraints=params.get("Constraints"),
        name=params.get("Name"),
    )
    return {"GrantToken": grant["grant_token"], "GrantId": grant["grant_id"]}


def list_grants(app: App, ctx: RequestContext, params: Params) -> Out:
    page = app.kms.list_grants(
        caller(ctx),
        params["KeyId"],
        grant_id=params.get("GrantId"),
        grantee=params.get("GranteePrincipal"),
        limit=params.get("Limit"),
        marker=params.get("Marker"),
    )
    return _page("Grants", [grant_entry(g) for g in page.items], page.next_token)


def list_retirable_grants(app: App, ctx: RequestContext, params: Params) -> Out:
    page = app.kms.list_retirable_grants(
        caller(ctx),
        params["RetiringPrincipal"],
        limit=params.get("Limit"),
        marker=params.get("Marker"),
    )
    return _page("Grants", [grant_entry(g) for g in page.items], page.next_token)


def retire_grant(app: App, ctx: RequestContext, params: Params) -> None:
    app.kms.retire_grant(
        caller(ctx),
        grant_token=params.get("GrantToken"),
        key_ref=params.get("KeyId"),
        grant_id=params.get("GrantId"),
    )


def revoke_grant(app: App, ctx: RequestContext, params: Params) -> None:
    app.kms.revoke_grant(caller(ctx), params["KeyId"], params["GrantId"])


def tag_resource(app: App, ctx: RequestContext, params: Params) -> None:
    tags = {t["TagKey"]: t["TagValue"] for t in params["Tags"]}
    app.kms.tag_resource(caller(ctx), params["KeyId"], tags)


def untag_resource(app: App, ctx: RequestContext, params: Params) -> None:
    app.kms.untag_resource(caller(ctx), params["KeyId"], list(params["TagKeys"]))


def list_resource_tags(app: App, ctx: RequestContext, params: Params) -> Out:
    tags = app.kms.list_resource_tags(caller(ctx), params["KeyId"])
    keys, marker = kms.page_of(
        "kms-resource-tags",
        tags,
        key=str,
        limit=params.get("Limit"),
        marker=params.get("Marker"),
        default=50,
        maximum=50,
    )
    return _page("Tags", [{"TagKey": k, "TagValue": tags[k]} for k in keys], marker)


HANDLERS: dict[str, AppHandler] = {
    "CreateKey": create_key,
    "DescribeKey": describe_key,
    "ListKeys": list_keys,
    "UpdateKeyDescription": update_key_description,
    "GetKeyPolicy": get_key_policy,
    "PutKeyPolicy": put_key_policy,
    "ListKeyPolicies": list_key_policies,
    "CreateAlias": create_alias,
    "DeleteAlias": delete_alias,
    "UpdateAlias": update_alias,
    "ListAliases": list_aliases,
    "EnableKey": enable_key,
    "DisableKey": disable_key,
    "EnableKeyRotation": enable_key_rotation,
    "DisableKeyRotation": disable_key_rotation,
    "GetKeyRotationStatus": get_key_rotation_status,
    "RotateKeyOnDemand": rotate_key_on_demand,
    "ListKeyRotations": list_key_rotations,
    "ScheduleKeyDeletion": schedule_key_deletion,
    "CancelKeyDeletion": cancel_key_deletion,
    "Encrypt": encrypt,
    "Decrypt": decrypt,
    "GenerateDataKey": generate_data_key,
    "GenerateDataKeyWithoutPlaintext": generate_data_key_without_plaintext,
    "GenerateRandom": generate_random,
    "ReEncrypt": re_encrypt,
    "CreateGrant": create_grant,
    "ListGrants": list_grants,
    "ListRetirableGrants": list_retirable_grants,
    "RetireGrant": retire_grant,
    "RevokeGrant": revoke_grant,
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListResourceTags": list_resource_tags,
}


def _authorized(
    app: App, name: str, handler: AppHandler, ctx: RequestContext, params: Params
) -> Mapping[str, Any] | None:
    """``kms:<Operation>`` on the key the parameters name, before the handler runs."""
    authorization.authorize_operation(app.deps, caller(ctx), name, params, service="kms")
    return handler(app, ctx, params)


def bind(app: App) -> dict[str, Handler]:
    """The KMS handler table for ``app``: each handler with the app bound, authorized first."""
    return {name: partial(_authorized, app, name, handler) for name, handler in HANDLERS.items()}
