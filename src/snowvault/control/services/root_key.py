"""What the root key seals in the catalog, and re-sealing it under a new root key.

The root key seals exactly three kinds of catalog values (see
``catalog.sealed_secrets``): access-key secrets (``SecretBox(root, "access-keys")``), KMS
key material (``MaterialBox(root)``) and resource secrets (a plugin's password or secret
access key: ``SecretBox(root, "resource-secrets")``, the resource ARN as context). Vault
data is *not* sealed by it: a vault's repository secret is wrapped by a KMS key, whose
material the root key seals. So a rotation re-seals a handful of small catalog values and
never touches a vault::

    counts = reseal(engine, old_key, new_key)     # one transaction; all or nothing
    opens_catalog(engine, new_key)                # -> True

Who may call this: only the operator, offline, through ``snowvault root-key rotate``
(there is no API for it). Must not depend on the scheduler, the composition root or any
interface.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from snowvault.control import catalog
from snowvault.core.errors import InvalidInput
from snowvault.engine import crypto
from snowvault.engine.crypto import kms as kms_crypto

ACCESS_KEYS_PURPOSE = "access-keys"
RESOURCE_SECRETS_PURPOSE = "resource-secrets"


@dataclass(frozen=True)
class Resealed:
    access_keys: int
    kms_versions: int
    resource_secrets: int = 0


def access_key_box(root_key: bytes) -> crypto.SecretBox:
    """The box access-key secrets are sealed in (the same one the server uses)."""
    return crypto.SecretBox(root_key, ACCESS_KEYS_PURPOSE)


def resource_secret_box(root_key: bytes) -> crypto.SecretBox:
    """The box resources' plugin secrets are sealed in (context: the resource ARN)."""
    return crypto.SecretBox(root_key, RESOURCE_SECRETS_PURPOSE)


def reseal(engine: Engine, old_key: bytes, new_key: bytes) -> Resealed:
    """Open every root-sealed catalog value with ``old_key``, seal it with ``new_key``.

    One transaction: if any value does not open with ``old_key`` nothing is written and
    InvalidInput says which value (the old key is not this catalog's).
    """
    old_box, new_box = access_key_box(old_key), access_key_box(new_key)
    old_material, new_material = kms_crypto.MaterialBox(old_key), kms_crypto.MaterialBox(new_key)
    with catalog.db.transaction(engine) as conn:
        keys = catalog.sealed_secrets.access_keys(conn)
        for row in keys:
            key_id = str(row["access_key_id"])
            try:
                secret = old_box.open(row["sealed_secret"], key_id.encode())
            except crypto.AuthenticationFailed:
                raise _not_this_catalog(f"access key {key_id}") from None
            sealed = new_box.seal(secret, key_id.encode())
            catalog.sealed_secrets.set_access_key(conn, key_id, sealed)
        versions = catalog.sealed_secrets.kms_versions(conn)
        for row in versions:
            arn, version = str(row["key_arn"]), int(row["version"])
            try:
                material = old_material.open(row["sealed_material"], arn, version)
            except crypto.AuthenticationFailed:
                raise _not_this_catalog(f"KMS key {arn} version {version}") from None
            resealed = new_material.seal(material, arn, version)
            catalog.sealed_secrets.set_kms_version(conn, arn, version, resealed)
        old_res, new_res = resource_secret_box(old_key), resource_secret_box(new_key)
        secrets = catalog.sealed_secrets.resource_secrets(conn)
        for row in secrets:
            arn = str(row["arn"])
            try:
                plain = old_res.open(row["sealed_secrets"], arn.encode())
            except crypto.AuthenticationFailed:
                raise _not_this_catalog(f"the secrets of resource {arn}") from None
            catalog.sealed_secrets.set_resource_secrets(
                conn, arn, new_res.seal(plain, arn.encode())
            )
    return Resealed(
        access_keys=len(keys), kms_versions=len(versions), resource_secrets=len(secrets)
    )


def opens_catalog(engine: Engine, root_key: bytes) -> bool:
    """True when ``root_key`` opens the catalog's sealed values (or there are none).

    Checks one access key and one KMS material version: enough to tell a wrong key file
    from the right one, cheap enough for every start.
    """
    with catalog.db.read_transaction(engine) as conn:
        keys = catalog.sealed_secrets.access_keys(conn)[:1]
        versions = catalog.sealed_secrets.kms_versions(conn)[:1]
    try:
        for row in keys:
            access_key_box(root_key).open(row["sealed_secret"], str(row["access_key_id"]).encode())
        box = kms_crypto.MaterialBox(root_key)
        for row in versions:
            box.open(row["sealed_material"], str(row["key_arn"]), int(row["version"]))
    except crypto.AuthenticationFailed:
        return False
    return True


def _not_this_catalog(what: str) -> InvalidInput:
    return InvalidInput(
        detail=f"the current root key does not open {what}: it is not this catalog's root "
        "key (nothing was changed)"
    )
