"""Accounts, the root principal and access keys: bootstrap, SigV4 key lookup, reset.

Access-key secrets are stored sealed with ``SecretBox(root_secret, "access-keys")``
(context: the key id), so the catalog never holds a plaintext secret.

    creds = bootstrap(engine, box, now=clock.now())      # on `snowvault init`
    found = lookup_key(engine, box, creds.access_key_id)  # on every signed request

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine

from snowvault.control import catalog
from snowvault.core import arn as arns
from snowvault.core.errors import NotFound
from snowvault.engine import crypto

ROOT_ACCOUNT_SETTING = "root_account_id"
_KEY_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"


@dataclass(frozen=True)
class Credentials:
    """An access key pair and whom it belongs to (never logged: see __repr__)."""

    access_key_id: str
    secret_access_key: str
    account_id: str
    principal_arn: str

    def __repr__(self) -> str:
        return f"Credentials({self.access_key_id!r}, account={self.account_id!r})"


def new_account_id() -> str:
    return "".join(secrets.choice(string.digits) for _ in range(12))


def new_key_pair() -> tuple[str, str]:
    key_id = "AKIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
    return key_id, secret


def root_arn(account_id: str) -> str:
    return arns.build("iam", "", account_id, "root")


def bootstrap(
    engine: Engine, box: crypto.SecretBox, *, now: datetime, account_id: str | None = None
) -> Credentials:
    """Create the root account, its root principal and one access key pair."""
    account_id = account_id or new_account_id()
    key_id, secret = new_key_pair()
    principal = root_arn(account_id)
    with catalog.db.transaction(engine) as conn:
        catalog.accounts.create_account(conn, account_id=account_id, name="root", created_at=now)
        catalog.accounts.create_principal(
            conn, arn=principal, account_id=account_id, name="root", created_at=now, is_root=True
        )
        catalog.accounts.create_access_key(
            conn,
            access_key_id=key_id,
            principal_arn=principal,
            sealed_secret=box.seal(secret.encode(), key_id.encode()),
            created_at=now,
        )
        catalog.settings.put(conn, ROOT_ACCOUNT_SETTING, account_id)
    return Credentials(key_id, secret, account_id, principal)


def lookup_key(engine: Engine, box: crypto.SecretBox, access_key_id: str) -> Credentials | None:
    """The active key pair ``access_key_id`` names, or None (unknown or inactive)."""
    with catalog.db.read_transaction(engine) as conn:
        try:
            row = catalog.accounts.get_access_key(conn, access_key_id)
        except NotFound:
            return None
    if row["status"] != "Active":
        return None
    try:
        secret = box.open(row["sealed_secret"], access_key_id.encode()).decode()
    except crypto.AuthenticationFailed:
        return None
    return Credentials(access_key_id, secret, row["account_id"], row["principal_arn"])


def reset_keep_root(engine: Engine) -> None:
    """Empty the catalog but keep the root account, its root principal and its keys."""
    with catalog.db.transaction(engine) as conn:
        account_id = catalog.settings.get(conn, ROOT_ACCOUNT_SETTING)
        account = catalog.accounts.get_account(conn, account_id)
        principal = catalog.accounts.get_principal(conn, root_arn(account_id))
        keys = catalog.accounts.list_access_keys(conn, principal["arn"])
    catalog.db.reset(engine)
    with catalog.db.transaction(engine) as conn:
        catalog.accounts.create_account(
            conn, account_id=account_id, name=account["name"], created_at=account["created_at"]
        )
        catalog.accounts.create_principal(
            conn,
            arn=principal["arn"],
            account_id=account_id,
            name=principal["name"],
            created_at=principal["created_at"],
            is_root=True,
        )
        for key in keys:
            catalog.accounts.create_access_key(
                conn,
                access_key_id=key["access_key_id"],
                principal_arn=principal["arn"],
                sealed_secret=key["sealed_secret"],
                created_at=key["created_at"],
                status=key["status"],
            )
        catalog.settings.put(conn, ROOT_ACCOUNT_SETTING, account_id)


def root_credentials(engine: Engine, box: crypto.SecretBox) -> Credentials:
    """The root account's first active key pair (for `snowvault run`'s how-to)."""
    with catalog.db.transaction(engine) as conn:
        account_id = catalog.settings.get(conn, ROOT_ACCOUNT_SETTING)
        if account_id is None:
            raise NotFound(kind="root account", name="(the catalog was never initialised)")
        keys = catalog.accounts.list_access_keys(conn, root_arn(account_id))
    for key in keys:
        found = lookup_key(engine, box, key["access_key_id"])
        if found is not None:
            return found
    raise NotFound(kind="active root access key", name=account_id)
