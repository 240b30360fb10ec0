"""``snowvault iam``: users, access keys, identity policies and accounts, over the
extension API (CreateUser, CreateAccessKey, ListAccessKeys, UpdateAccessKey,
DeleteAccessKey, PutUserPolicy, CreateAccount, ...).

    snowvault iam user create alice
    snowvault iam access-key create alice --json      # the secret is shown once
    snowvault iam access-key list alice               # ids and Active/Inactive, no secret
    snowvault iam access-key deactivate alice AKIA... # refused from its next request on
    snowvault iam access-key delete alice AKIA...
    snowvault iam policy put alice backup-admin policy.json

A pure API client: must not import the server side (interfaces.api, app, services).
"""

from __future__ import annotations

import json
from typing import TextIO

import click

from snowvault.core.errors import InvalidInput
from snowvault.interfaces.cli import render
from snowvault.interfaces.cli.client import Api, json_option, with_api

USER_COLUMNS: list[render.Column] = [
    ("NAME", lambda u: u.get("UserName")),
    ("ARN", lambda u: u.get("Arn")),
    ("CREATED", lambda u: u.get("CreateDate")),
]

KEY_COLUMNS: list[render.Column] = [
    ("ACCESS KEY ID", lambda k: k.get("AccessKeyId")),
    ("STATUS", lambda k: k.get("Status")),
    ("USER", lambda k: k.get("UserName")),
    ("CREATED", lambda k: k.get("CreateDate")),
]


@click.group()
def iam() -> None:
    """Users, access keys and identity policies of your account."""


@iam.group()
def user() -> None:
    """IAM users."""


@user.command("create")
@click.argument("name")
@json_option
@with_api
def user_create(api: Api, name: str, as_json: bool) -> None:
    """Create user NAME (no permissions until a policy is put)."""
    doc = api.ext("CreateUser", {"UserName": name})
    render.result(as_json, doc, f"created user {doc['User']['Arn']}")


@user.command("list")
@json_option
@with_api
def user_list(api: Api, as_json: bool) -> None:
    """List the users of your account."""
    users = api.ext_paginate("ListUsers", "Users", {"MaxItems": 1000}, token="Marker")
    render.table(as_json, users, USER_COLUMNS)


@user.command("delete")
@click.argument("name")
@json_option
@with_api
def user_delete(api: Api, name: str, as_json: bool) -> None:
    """Delete user NAME with its keys and policies."""
    api.ext("DeleteUser", {"UserName": name})
    render.result(as_json, {"UserName": name, "Deleted": True}, f"deleted user {name}")


@iam.group("access-key")
def access_key() -> None:
    """Access keys of users."""


def _key_text(key: dict[str, str]) -> str:
    return (
        f"access key id:     {key['AccessKeyId']}\n"
        f"secret access key: {key['SecretAccessKey']}\n"
        "(the secret is shown only now)"
    )


@access_key.command("create")
@click.argument("user_name", metavar="USER")
@json_option
@with_api
def access_key_create(api: Api, user_name: str, as_json: bool) -> None:
    """Create an access key pair for USER (a user holds at most 2)."""
    doc = api.ext("CreateAccessKey", {"UserName": user_name})
    render.result(as_json, doc, _key_text(doc["AccessKey"]))


@access_key.command("list")
@click.argument("user_name", metavar="[USER]", required=False)
@json_option
@with_api
def access_key_list(api: Api, user_name: str | None, as_json: bool) -> None:
    """List USER's access keys (ids and status, never a secret); without USER, your own
    user's."""
    body: dict[str, object] = {"MaxItems": 1000}
    if user_name:
        body["UserName"] = user_name
    keys = api.ext_paginate("ListAccessKeys", "AccessKeyMetadata", body, token="Marker")
    render.table(as_json, keys, KEY_COLUMNS)


def _set_status(api: Api, user_name: str, key_id: str, status: str, as_json: bool) -> None:
    api.ext("UpdateAccessKey", {"UserName": user_name, "AccessKeyId": key_id, "Status": status})
    doc = {"UserName": user_name, "AccessKeyId": key_id, "Status": status}
    render.result(as_json, doc, f"access key {key_id} of {user_name} is {status}")


@access_key.command("deactivate")
@click.argument("user_name", metavar="USER")
@click.argument("key_id", metavar="ACCESS_KEY_ID")
@json_option
@with_api
def access_key_deactivate(api: Api, user_name: str, key_id: str, as_json: bool) -> None:
    """Make USER's key Inactive: every request it signs is refused from now on."""
    _set_status(api, user_name, key_id, "Inactive", as_json)


@access_key.command("activate")
@click.argument("user_name", metavar="USER")
@click.argument("key_id", metavar="ACCESS_KEY_ID")
@json_option
@with_api
def access_key_activate(api: Api, user_name: str, key_id: str, as_json: bool) -> None:
    """Make USER's key Active again."""
    _set_status(api, user_name, key_id, "Active", as_json)


@access_key.command("delete")
@click.argument("user_name", metavar="USER")
@click.argument("key_id", metavar="ACCESS_KEY_ID")
@json_option
@with_api
def access_key_delete(api: Api, user_name: str, key_id: str, as_json: bool) -> None:
    """Delete USER's key for good."""
    api.ext("DeleteAccessKey", {"UserName": user_name, "AccessKeyId": key_id})
    doc = {"UserName": user_name, "AccessKeyId": key_id, "Deleted": True}
    render.result(as_json, doc, f"deleted access key {key_id} of {user_name}")


@iam.group()
def policy() -> None:
    """Identity policies (IAM JSON documents) of users."""


@policy.command("put")
@click.argument("user_name", metavar="USER")
@click.argument("policy_name", metavar="NAME")
@click.argument("document", type=click.File("r"), metavar="FILE|-")
@json_option
@with_api
def policy_put(api: Api, user_name: str, policy_name: str, document: TextIO, as_json: bool) -> None:
    """Create or replace USER's policy NAME from a JSON FILE (- for stdin)."""
    try:
        text = document.read()  # decoded here: a file that is not UTF-8 fails here
        json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(detail=f"the policy document is not JSON: {exc}") from None
    body = {"UserName": user_name, "PolicyName": policy_name, "PolicyDocument": text}
    api.ext("PutUserPolicy", body)
    render.result(as_json, body, f"put policy {policy_name} on {user_name}")


@policy.command("get")
@click.argument("user_name", metavar="USER")
@click.argument("policy_name", metavar="NAME")
@json_option
@with_api
def policy_get(api: Api, user_name: str, policy_name: str, as_json: bool) -> None:
    """Show USER's policy NAME."""
    doc = api.ext("GetUserPolicy", {"UserName": user_name, "PolicyName": policy_name})
    render.result(as_json, doc, json.dumps(json.loads(doc["PolicyDocument"]), indent=2))


@iam.group()
def account() -> None:
    """Accounts (tenants); only the server's root user may create one."""


@account.command("create")
@click.argument("name")
@json_option
@with_api
def account_create(api: Api, name: str, as_json: bool) -> None:
    """Create account NAME and its root access key."""
    doc = api.ext("CreateAccount", {"AccountName": name})
    render.result(
        as_json, doc, f"account {doc['AccessKey']['AccountId']}\n" + _key_text(doc["AccessKey"])
    )
