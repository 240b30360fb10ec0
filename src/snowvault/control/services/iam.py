"""IAM inside snowvault: accounts (tenants), users, access keys, identity policies, and
backup vault access policies (resource policies).

The extension API exposes CreateAccount (root of the server's first account only),
CreateUser, ListUsers, DeleteUser, CreateAccessKey, ListAccessKeys, UpdateAccessKey,
DeleteAccessKey, PutUserPolicy, GetUserPolicy, DeleteUserPolicy; the AWS Backup API
exposes Put/Get/DeleteBackupVaultAccessPolicy.
Policy documents are validated by :mod:`snowvault.control.model.iam` before they are
stored, so a stored policy always parses. Each call here is already authorized by the
API's hook (:func:`authorization.authorize_operation`); CreateAccount adds its own
root-only rule.

    user = iam.create_user(deps, caller, "alice")
    creds = iam.create_access_key(deps, caller, "alice", box)
    iam.put_user_policy(deps, caller, "alice", "backup-admin", document_json)

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from snowvault.control import catalog
from snowvault.control.model import iam as model
from snowvault.control.services import accounts, authorization, paging, vaults
from snowvault.control.services.base import Caller, Deps
from snowvault.control.services.errors import AccessDenied, QuotaExceeded
from snowvault.core import arn as arns
from snowvault.core.errors import AlreadyExists, InvalidInput, NotFound
from snowvault.engine import crypto

Record = dict[str, Any]
_USER_NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}$")
_POLICY_NAME_RE = re.compile(r"^[\w+=,.@-]{1,128}$")
USER_POLICIES_MAX_CHARS = 10_240
"""The inline policies of one user together, in characters without whitespace, as IAM
counts: its largest inline quota (a role's; a user's is 2,048, but inline policies are
the only kind a snowvault user has). Every request of the user evaluates them."""
VAULT_POLICY_MAX_BYTES = 32 * 1024
"""A vault access policy, as the key service bounds a key policy."""
USERS_PAGE_DEFAULT = 100  # IAM's MaxItems default and bounds
USERS_PAGE_MAX = 1000
_USERS_TOKEN = "iam-users"
ACCESS_KEYS_PER_USER = 2
"""IAM's quota of access keys per user (not adjustable): a third is LimitExceeded, so a
rotation is create, switch, then deactivate and delete the old one."""
ACCESS_KEY_STATUSES = ("Active", "Inactive")
_KEYS_TOKEN = "iam-access-keys"


def user_arn(account_id: str, name: str) -> str:
    """The ARN of IAM user ``name``; a name IAM does not allow is refused (InvalidInput).

    Abuse case: every IAM call that names a user comes here, so none can name an agent
    (``snowvault-agent/HOST``, ``agent:HOST``: a ``/`` or ``:`` never passes). Unchecked,
    CreateAccessKey answered a key pair of an agent's principal to anyone allowed
    ``iam:CreateAccessKey``, who could then act as that host in the job protocol."""
    _check(_USER_NAME_RE, "UserName", name)
    return arns.build("iam", "", account_id, f"user/{name}")


def _check(pattern: re.Pattern[str], what: str, value: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidInput(detail=f"{what} {value!r} is not valid")
    return value


def _load(document: str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(document, str):
        try:
            loaded = json.loads(document)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
            raise InvalidInput(detail=f"MalformedPolicyDocument: not JSON ({exc})") from None
        if not isinstance(loaded, dict):
            raise InvalidInput(detail="MalformedPolicyDocument: not a JSON object")
        return loaded
    return dict(document)


# ------------------------------------------------------------------------------- accounts


def create_account(
    deps: Deps, caller: Caller, box: crypto.SecretBox, name: str, account_id: str | None = None
) -> accounts.Credentials:
    """CreateAccount: a new tenant with its root key pair; only the server root may."""
    with catalog.db.transaction(deps.engine) as conn:
        first = catalog.settings.get(conn, accounts.ROOT_ACCOUNT_SETTING)
    if caller.principal_arn != accounts.root_arn(str(first)):
        raise AccessDenied(
            detail=f"User: {caller.principal_arn} is not authorized to perform: "
            "snowvault:CreateAccount (only the server's root user may)"
        )
    account_id = account_id or accounts.new_account_id()
    key_id, secret = accounts.new_key_pair()
    principal = accounts.root_arn(account_id)
    with catalog.db.transaction(deps.engine) as conn:
        catalog.accounts.create_account(
            conn, account_id=account_id, name=name, created_at=caller.now
        )
        catalog.accounts.create_principal(
            conn,
            arn=principal,
            account_id=account_id,
            name="root",
            created_at=caller.now,
            is_root=True,
        )
        _store_key(conn, box, key_id, secret, principal, caller)
    return accounts.Credentials(key_id, secret, account_id, principal)


def _store_key(
    conn: Any, box: crypto.SecretBox, key_id: str, secret: str, principal: str, caller: Caller
) -> None:
    catalog.accounts.create_access_key(
        conn,
        access_key_id=key_id,
        principal_arn=principal,
        sealed_secret=box.seal(secret.encode(), key_id.encode()),
        created_at=caller.now,
    )


# --------------------------------------------------------------------------------- users


def create_user(deps: Deps, caller: Caller, name: str, path: str = "/") -> Record:
    """CreateUser in the caller's account.

    Abuse case: IAM user names are unique regardless of case (AWS refuses ``admin`` beside
    ``ADMIN``), but ARNs compare exactly: a second user ``Alice`` beside ``alice`` would
    escape a policy statement or condition written for ``user/alice``. Refused as
    AlreadyExists, as IAM answers EntityAlreadyExists."""
    _check(_USER_NAME_RE, "UserName", name)
    with catalog.db.transaction(deps.engine) as conn:
        taken = {
            str(r["name"]).casefold()
            for r in catalog.accounts.list_principals(conn, caller.account_id)
            if not r["is_root"]
        }
        if name.casefold() in taken:
            raise AlreadyExists(kind="user", name=name)
        return catalog.accounts.create_principal(
            conn,
            arn=user_arn(caller.account_id, name),
            account_id=caller.account_id,
            name=name,
            created_at=caller.now,
            path=path,
        )


def list_users(deps: Deps, caller: Caller) -> list[Record]:
    """Every user of the caller's account, by name (agents and the root are not users)."""
    with catalog.db.transaction(deps.engine) as conn:
        rows = catalog.accounts.list_principals(conn, caller.account_id)
    return [r for r in rows if not r["is_root"] and r["path"] != authorization.AGENT_PATH]


def page_users(
    deps: Deps, caller: Caller, *, max_items: int | None = None, marker: str | None = None
) -> catalog.pagination.Page:
    """ListUsers as IAM answers it: at most ``max_items`` users (1-1000, default 100) by
    name, starting after ``marker``; the page's token is the next call's Marker.

    Abuse case: the Marker is the caller's bytes. It is an opaque token naming the last
    user of the previous page and this list; one this server did not issue (not base64
    JSON, another list's, a position that is not a name) is InvalidToken (400), never a
    500. A marker only moves the start of the caller's own account's list, so a forged one
    reaches nothing more than a valid one.

        page = iam.page_users(deps, caller, max_items=2)
        nxt = iam.page_users(deps, caller, max_items=2, marker=page.next_token)
    """
    users, next_marker = paging.page(
        _USERS_TOKEN,
        list_users(deps, caller),
        key=lambda u: str(u["name"]),  # unique in an account
        limit=max_items,
        token=marker,
        default=USERS_PAGE_DEFAULT,
        maximum=USERS_PAGE_MAX,
        limit_name="MaxItems",
    )
    return catalog.pagination.Page(users, next_marker)


def delete_user(deps: Deps, caller: Caller, name: str) -> None:
    with catalog.db.transaction(deps.engine) as conn:
        catalog.accounts.delete_principal(conn, user_arn(caller.account_id, name))


def create_access_key(
    deps: Deps, caller: Caller, user_name: str, box: crypto.SecretBox
) -> accounts.Credentials:
    """CreateAccessKey for a user of the caller's account (the secret is shown once).

    Abuse case: unbounded, a user allowed ``iam:CreateAccessKey`` on itself could mint
    keys without end, and a leaked key could mint fresh ones its owner never sees in a
    short list. A user holds at most :data:`ACCESS_KEYS_PER_USER` keys, Active or
    Inactive (IAM's quota; LimitExceeded), counted under a lock on the user's row so two
    concurrent calls cannot both take the last place."""
    principal = user_arn(caller.account_id, user_name)
    key_id, secret = accounts.new_key_pair()
    with catalog.db.transaction(deps.engine) as conn:
        catalog.accounts.lock_principal(conn, principal)
        held = len(catalog.accounts.list_access_keys(conn, principal))
        if held >= ACCESS_KEYS_PER_USER:
            raise QuotaExceeded(
                f"user {user_name} already has {held} access keys; IAM's "
                f"quota is {ACCESS_KEYS_PER_USER} per user (delete one first)"
            )
        _store_key(conn, box, key_id, secret, principal, caller)
    return accounts.Credentials(key_id, secret, caller.account_id, principal)


def key_owner(caller: Caller, user_name: str | None) -> str:
    """The user whose keys a ListAccessKeys/UpdateAccessKey/DeleteAccessKey names: the
    given one, or, as IAM, the caller's own user when ``UserName`` is left out.

    The account root must name the user (snowvault's root keys are managed by
    ``snowvault init``/CreateAccount, not by these calls); an agent's principal
    (``user/snowvault-agent/HOST``) is no IAM user and never passes :func:`user_arn`."""
    if user_name is not None:
        user_arn(caller.account_id, user_name)  # validates
        return user_name
    prefix = arns.build("iam", "", caller.account_id, "user/")
    if not caller.principal_arn.startswith(prefix):
        raise InvalidInput(detail="UserName is required when the account root calls")
    name = caller.principal_arn[len(prefix) :]
    user_arn(caller.account_id, name)  # refuses an agent's path
    return name


def _users_key(conn: Any, principal: str, access_key_id: str) -> Record:
    """The key ``access_key_id`` of user ``principal``; NotFound when there is no such key
    or it is another principal's (of this account or another: the same answer, so a
    caller learns nothing of keys that are not the named user's)."""
    try:
        row = catalog.accounts.get_access_key(conn, access_key_id)
    except NotFound:
        row = None
    if row is None or row["principal_arn"] != principal:
        raise NotFound(kind="access key", name=access_key_id)
    return row


def page_access_keys(
    deps: Deps,
    caller: Caller,
    user_name: str | None,
    *,
    max_items: int | None = None,
    marker: str | None = None,
) -> tuple[str, catalog.pagination.Page]:
    """ListAccessKeys as IAM answers it: the user's name and a page of its keys'
    metadata (never a secret), by key id, MaxItems 1-1000 (default 100) and Marker as
    ListUsers. NotFound when the user does not exist."""
    name = key_owner(caller, user_name)
    principal = user_arn(caller.account_id, name)
    with catalog.db.transaction(deps.engine) as conn:
        catalog.accounts.get_principal(conn, principal)
        rows = catalog.accounts.list_access_keys(conn, principal)
    keys = [
        {
            "access_key_id": r["access_key_id"],
            "status": r["status"],
            "created_at": r["created_at"],
        }
        for r in rows
    ]
    items, next_marker = paging.page(
        _KEYS_TOKEN,
        keys,
        key=lambda k: str(k["access_key_id"]),
        limit=max_items,
        token=marker,
        default=USERS_PAGE_DEFAULT,
        maximum=USERS_PAGE_MAX,
        limit_name="MaxItems",
    )
    return name, catalog.pagination.Page(items, next_marker)


def update_access_key(
    deps: Deps, caller: Caller, user_name: str | None, access_key_id: str, status: str
) -> None:
    """UpdateAccessKey: set a key Active or Inactive. An Inactive key is refused by SigV4
    on its next request, on every server of a fleet: each request reads the key's row
    from the catalog (:func:`accounts.lookup_key`), nothing caches it."""
    if status not in ACCESS_KEY_STATUSES:
        raise InvalidInput(detail=f"Status must be Active or Inactive, not {status!r}")
    principal = user_arn(caller.account_id, key_owner(caller, user_name))
    with catalog.db.transaction(deps.engine) as conn:
        _users_key(conn, principal, access_key_id)
        catalog.accounts.set_access_key_status(conn, access_key_id, status)


def delete_access_key(
    deps: Deps, caller: Caller, user_name: str | None, access_key_id: str
) -> None:
    """DeleteAccessKey: the key is gone; its next request is refused as an unknown key."""
    principal = user_arn(caller.account_id, key_owner(caller, user_name))
    with catalog.db.transaction(deps.engine) as conn:
        _users_key(conn, principal, access_key_id)
        catalog.accounts.delete_access_key(conn, access_key_id)


def put_user_policy(
    deps: Deps, caller: Caller, user_name: str, policy_name: str, document: str | Mapping[str, Any]
) -> None:
    """PutUserPolicy: validate the identity policy, then create or replace it.

    Abuse case: every request of the user evaluates its policies, and one server serves
    every tenant. A 3.3 MB policy (17,000 statements) made each of that user's calls cost
    the server 1.1 s, and four such callers slowed another account's calls from 0.01 to
    1.5 s. The user's inline policies together are bounded by
    :data:`USER_POLICIES_MAX_CHARS` (LimitExceeded), checked before the parse."""
    _check(_POLICY_NAME_RE, "PolicyName", policy_name)
    loaded = _load(document)
    if _policy_chars(loaded) > USER_POLICIES_MAX_CHARS:
        raise InvalidInput(
            detail=f"LimitExceeded: a user's inline policies hold at most "
            f"{USER_POLICIES_MAX_CHARS} characters (whitespace not counted)"
        )
    model.parse_policy(loaded, "identity")
    principal = user_arn(caller.account_id, user_name)
    with catalog.db.transaction(deps.engine) as conn:
        catalog.accounts.get_principal(conn, principal)
        others = catalog.accounts.get_user_policies(conn, principal)
        others.pop(policy_name, None)  # the one this call replaces
        size = sum(_policy_chars(d) for d in [loaded, *others.values()])
        if size > USER_POLICIES_MAX_CHARS:
            raise InvalidInput(
                detail=f"LimitExceeded: the inline policies of user {user_name} would hold "
                f"{size} characters; the quota is {USER_POLICIES_MAX_CHARS} (whitespace "
                "not counted)"
            )
        catalog.accounts.put_user_policy(
            conn, principal_arn=principal, policy_name=policy_name, document=loaded, now=caller.now
        )


def _policy_chars(document: Mapping[str, Any]) -> int:
    """A policy's size as IAM counts it: its characters, whitespace left out."""
    return len(json.dumps(document, separators=(",", ":"), ensure_ascii=False))


def get_user_policy(deps: Deps, caller: Caller, user_name: str, policy_name: str) -> dict[str, Any]:
    principal = user_arn(caller.account_id, user_name)
    with catalog.db.transaction(deps.engine) as conn:
        policies = catalog.accounts.get_user_policies(conn, principal)
    if policy_name not in policies:
        raise NotFound(kind="user policy", name=policy_name)
    return policies[policy_name]


def delete_user_policy(deps: Deps, caller: Caller, user_name: str, policy_name: str) -> None:
    with catalog.db.transaction(deps.engine) as conn:
        catalog.accounts.delete_user_policy(
            conn, principal_arn=user_arn(caller.account_id, user_name), policy_name=policy_name
        )


# ----------------------------------------------------------------- vault access policies


def put_vault_access_policy(
    deps: Deps, caller: Caller, vault_name: str, document: str | Mapping[str, Any]
) -> None:
    """PutBackupVaultAccessPolicy: a resource policy, validated, kept as given; at most
    :data:`VAULT_POLICY_MAX_BYTES` (every call naming the vault evaluates it)."""
    text = document if isinstance(document, str) else json.dumps(document)
    if len(text.encode("utf-8", "surrogatepass")) > VAULT_POLICY_MAX_BYTES:
        raise InvalidInput(
            detail=f"LimitExceeded: a backup vault access policy holds at most "
            f"{VAULT_POLICY_MAX_BYTES} bytes"
        )
    model.parse_policy(_load(text), "resource")
    vault = vaults.get(deps, caller, vault_name)
    with catalog.db.transaction(deps.engine) as conn:
        catalog.vaults.update(conn, vault["arn"], access_policy=text)


def get_vault_access_policy(deps: Deps, caller: Caller, vault_name: str) -> Record:
    """GetBackupVaultAccessPolicy: ResourceNotFound when the vault has none."""
    vault = vaults.get(deps, caller, vault_name)
    if vault["access_policy"] is None:
        raise NotFound(kind="backup vault access policy", name=vault_name)
    return {
        "BackupVaultName": vault["name"],
        "BackupVaultArn": vault["arn"],
        "Policy": vault["access_policy"],
    }


def delete_vault_access_policy(deps: Deps, caller: Caller, vault_name: str) -> None:
    vault = vaults.get(deps, caller, vault_name)
    with catalog.db.transaction(deps.engine) as conn:
        catalog.vaults.update(conn, vault["arn"], access_policy=None)
