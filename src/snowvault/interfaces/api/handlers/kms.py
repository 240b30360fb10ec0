"""The KMS JSON API subset (``X-Amz-Target: TrentService.*``), over the key service.

    table = bind(app)        # {"CreateKey": callable(ctx, params), ...}

Blobs arrive and leave as bytes (the protocol layer does base64). Key material never
appears here: only ARNs, states and dates. Must not depend on the CLI or web interfaces.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from snowvault.app import App
from snowvault.control.services import authorization, kms
from snowvault.control.services.kms_errors import API_CODES
from snowvault.interfaces.api.asgi import Handler, RequestContext
from snowvault.interfaces.api.handlers.common import AppHandler, Out, Params, caller, drop_none

MODEL_NAME = "kms"
ERROR_CODES = API_CODES  # added to the API error table by the server (one place)


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


def _page(key: str, items: list[Out], marker: str | None) -> Out:
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
    )
    return {"KeyMetadata": key_metadata(key)}


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


def tag_resource(app: App, ctx: RequestContext, params: Params) -> None:
    tags = {t["TagKey"]: t["TagValue"] for t in params["Tags"]}
    app.kms.tag_resource(caller(ctx), params["KeyId"], tags)


def untag_resource(app: App, ctx: RequestContext, params: Params) -> None:
    app.kms.untag_resource(caller(ctx), params["KeyId"], list(params["TagKeys"]))


def list_resource_tags(app: App, ctx: RequestContext, params: Params) -> Out:
    tags = app.kms.list_resource_tags(caller(ctx), params["KeyId"])
    return {"Tags": [{"TagKey": k, "TagValue": v} for k, v in tags.items()], "Truncated": False}


HANDLERS: dict[str, AppHandler] = {
    "CreateKey": create_key,
    "DescribeKey": describe_key,
    "ListKeys": list_keys,
    "CreateAlias": create_alias,
    "DeleteAlias": delete_alias,
    "ListAliases": list_aliases,
    "EnableKey": enable_key,
    "DisableKey": disable_key,
    "EnableKeyRotation": enable_key_rotation,
    "DisableKeyRotation": disable_key_rotation,
    "GetKeyRotationStatus": get_key_rotation_status,
    "RotateKeyOnDemand": rotate_key_on_demand,
    "ScheduleKeyDeletion": schedule_key_deletion,
    "CancelKeyDeletion": cancel_key_deletion,
    "Encrypt": encrypt,
    "Decrypt": decrypt,
    "GenerateDataKey": generate_data_key,
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
