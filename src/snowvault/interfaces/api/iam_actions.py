"""IAM actions of the extension API (``POST /_snowvault/v1/<Action>``):

    CreateAccount {AccountName, AccountId?}   (the server root only) -> {AccessKey}
    CreateUser {UserName}                      -> {User}
    ListUsers {MaxItems?, Marker?}             -> {Users, IsTruncated, Marker?}
    DeleteUser {UserName}
    CreateAccessKey {UserName}                 -> {AccessKey} (the secret is shown once;
                                                  at most 2 per user: LimitExceeded)
    ListAccessKeys {UserName?, MaxItems?, Marker?}
                                               -> {AccessKeyMetadata, IsTruncated, Marker?}
    UpdateAccessKey {UserName?, AccessKeyId, Status: Active|Inactive}
    DeleteAccessKey {UserName?, AccessKeyId}
    PutUserPolicy {UserName, PolicyName, PolicyDocument}
    GetUserPolicy {UserName, PolicyName}       -> {UserName, PolicyName, PolicyDocument}
    DeleteUserPolicy {UserName, PolicyName}

Each is authorized as ``iam:<Action>`` on the user's ARN (``*`` for account-wide ones);
the three key calls without ``UserName`` name the caller's own user, as IAM.

Must not depend on the CLI or web interfaces.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from snowvault.app import App
from snowvault.control.services import accounts, authorization, iam
from snowvault.interfaces.api import errors
from snowvault.interfaces.api.asgi import RequestContext
from snowvault.interfaces.api.handlers.common import Out, Params, caller

Action = Callable[[App, RequestContext, Params], Out]


def _text(params: Params, key: str) -> str:
    value = params.get(key)
    if not isinstance(value, str) or not value:
        raise errors.ApiError("ValidationException", f"{key} is required.")
    return value


def _key(creds: accounts.Credentials) -> Out:
    return {
        "AccessKey": {
            "AccessKeyId": creds.access_key_id,
            "SecretAccessKey": creds.secret_access_key,
            "AccountId": creds.account_id,
            "PrincipalArn": creds.principal_arn,
        }
    }


def _user(row: dict[str, Any]) -> Out:
    return {"UserName": row["name"], "Arn": row["arn"], "CreateDate": row["created_at"].isoformat()}


def create_account(app: App, ctx: RequestContext, params: Params) -> Out:
    creds = iam.create_account(
        app.deps,
        caller(ctx),
        app.access_key_box,
        _text(params, "AccountName"),
        params.get("AccountId"),
    )
    return _key(creds)


def create_user(app: App, ctx: RequestContext, params: Params) -> Out:
    return {"User": _user(iam.create_user(app.deps, caller(ctx), _text(params, "UserName")))}


def list_users(app: App, ctx: RequestContext, params: Params) -> Out:
    max_items, marker = _max_marker(params.get("MaxItems"), params.get("Marker"))
    page = iam.page_users(app.deps, caller(ctx), max_items=max_items, marker=marker)
    out: Out = {"Users": [_user(r) for r in page.items], "IsTruncated": bool(page.next_token)}
    if page.next_token:
        out["Marker"] = page.next_token
    return out


def delete_user(app: App, ctx: RequestContext, params: Params) -> Out:
    iam.delete_user(app.deps, caller(ctx), _text(params, "UserName"))
    return {}


def create_access_key(app: App, ctx: RequestContext, params: Params) -> Out:
    user = _text(params, "UserName")
    return _key(iam.create_access_key(app.deps, caller(ctx), user, app.access_key_box))


def _max_marker(max_items: Any, marker: Any) -> tuple[int | None, str | None]:
    if max_items is not None and (isinstance(max_items, bool) or not isinstance(max_items, int)):
        raise errors.ApiError("ValidationException", "MaxItems must be an integer.")
    if marker is not None and not isinstance(marker, str):
        raise errors.ApiError("ValidationException", "Marker must be a string.")
    return max_items, marker or None


def _user_name(value: Any) -> str | None:
    """The optional ``UserName`` of the key calls (None: the caller's own user)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise errors.ApiError("ValidationException", "UserName must be a non-empty string.")
    return value


def list_access_keys(app: App, ctx: RequestContext, params: Params) -> Out:
    max_items, marker = _max_marker(params.get("MaxItems"), params.get("Marker"))
    name, page = iam.page_access_keys(
        app.deps,
        caller(ctx),
        _user_name(params.get("UserName")),
        max_items=max_items,
        marker=marker,
    )
    keys = [
        {
            "UserName": name,
            "AccessKeyId": k["access_key_id"],
            "Status": k["status"],
            "CreateDate": k["created_at"].isoformat(),
        }
        for k in page.items
    ]
    out: Out = {"AccessKeyMetadata": keys, "IsTruncated": bool(page.next_token)}
    if page.next_token:
        out["Marker"] = page.next_token
    return out


def update_access_key(app: App, ctx: RequestContext, params: Params) -> Out:
    key_id, status = _text(params, "AccessKeyId"), _text(params, "Status")
    if status not in iam.ACCESS_KEY_STATUSES:
        raise errors.ApiError("ValidationException", "Status must be Active or Inactive.")
    iam.update_access_key(app.deps, caller(ctx), _user_name(params.get("UserName")), key_id, status)
    return {}


def delete_access_key(app: App, ctx: RequestContext, params: Params) -> Out:
    key_id = _text(params, "AccessKeyId")
    iam.delete_access_key(app.deps, caller(ctx), _user_name(params.get("UserName")), key_id)
    return {}


def put_user_policy(app: App, ctx: RequestContext, params: Params) -> Out:
    document = params.get("PolicyDocument")
    if not isinstance(document, str | dict):
        raise errors.ApiError("ValidationException", "PolicyDocument is required.")
    iam.put_user_policy(
        app.deps, caller(ctx), _text(params, "UserName"), _text(params, "PolicyName"), document
    )
    return {}


def get_user_policy(app: App, ctx: RequestContext, params: Params) -> Out:
    user, name = _text(params, "UserName"), _text(params, "PolicyName")
    document = iam.get_user_policy(app.deps, caller(ctx), user, name)
    return {"UserName": user, "PolicyName": name, "PolicyDocument": json.dumps(document)}


def delete_user_policy(app: App, ctx: RequestContext, params: Params) -> Out:
    user, name = _text(params, "UserName"), _text(params, "PolicyName")
    iam.delete_user_policy(app.deps, caller(ctx), user, name)
    return {}


ACTIONS: dict[str, Action] = {
    "CreateAccount": create_account,
    "CreateUser": create_user,
    "ListUsers": list_users,
    "DeleteUser": delete_user,
    "CreateAccessKey": create_access_key,
    "ListAccessKeys": list_access_keys,
    "UpdateAccessKey": update_access_key,
    "DeleteAccessKey": delete_access_key,
    "PutUserPolicy": put_user_policy,
    "GetUserPolicy": get_user_policy,
    "DeleteUserPolicy": delete_user_policy,
}


_OWN_KEY_ACTIONS = frozenset({"ListAccessKeys", "UpdateAccessKey", "DeleteAccessKey"})


def unruled(actions: Iterable[str]) -> list[str]:
    """The extension actions among ``actions`` that authorization has no rule for (the
    IAM actions above have theirs here)."""
    return sorted(set(actions) - set(ACTIONS) - set(authorization.OPERATIONS))


def authorize(app: App, ctx: RequestContext, action: str, params: Params) -> None:
    """``iam:<Action>`` for these actions (on the user's ARN, or ``*``), ``backup:<Action>``
    for the other extension actions (RegisterResource, ...) on what
    :data:`authorization.OPERATIONS` says they name (a recovery point's vault for
    ListRecoveryPointContents, the vault for ExportRecoveryKey, ...), through the one
    shared authorize function; an action without a rule is refused."""
    who = caller(ctx)
    if action in ACTIONS:
        user = params.get("UserName")
        if user:
            resource = iam.user_arn(who.account_id, str(user))
        elif action in _OWN_KEY_ACTIONS:  # IAM: the caller's own user (an agent's own
            resource = who.principal_arn  # ARN is refused here as any call of an agent)
        else:
            resource = "*"
        authorization.authorize(app.deps, who, f"iam:{action}", resource)
        return
    authorization.authorize_operation(app.deps, who, action, params)
