"""``snowvault iam``: users, access keys, identity policies and accounts, over the
extension API (CreateUser, CreateAccessKey, PutUserPolicy, CreateAccount, ...).

    snowvault iam user create alice
    snowvault iam access-key create alice --json      # the secret is shown once
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
    """Create an access key pair for USER."""
    doc = api.ext("CreateAccessKey", {"UserName": user_name})
    render.result(as_json, doc, _key_text(doc["AccessKey"]))


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
