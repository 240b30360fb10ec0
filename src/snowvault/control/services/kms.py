"""The key service: KMS keys with AWS KMS semantics, inside snowvault.

    kms = Kms(engine, root_secret, clock)
    key = kms.create_key(caller, description="vault key")
    blob, arn = kms.encrypt(caller, key["arn"], b"secret", {"purpose": "demo"})
    kms.decrypt(caller, blob, {"purpose": "demo"})          # -> (b"secret", arn)
    kms.sweep(clock.now())            # automatic rotation and deletion after the window

Keys are ``arn:aws:kms:REGION:ACCOUNT:key/UUID``; a KeyId argument may be a key id, key
ARN, alias name (``alias/x``) or alias ARN. ``alias/aws/backup`` names the AWS managed
key of an account+region, created on first use. Key material lives only sealed under the
root secret (engine.crypto.kms.MaterialBox); rotation adds a version, every version keeps
decrypting, new encryptions use the newest. A key past its deletion date loses every
version (crypto-shredding) and answers NotFoundException from then on.

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection, Engine

from snowvault.control import catalog
from snowvault.control.services import kms_errors as err
from snowvault.control.services.base import Caller
from snowvault.core import arn as arns
from snowvault.core import ids
from snowvault.core.clock import Clock
from snowvault.core.errors import AlreadyExists
from snowvault.engine.crypto import kms as kms_crypto
from snowvault.engine.crypto import primitives

Record = dict[str, Any]

MANAGED_BACKUP_ALIAS = "alias/aws/backup"
ALGORITHM = "SYMMETRIC_DEFAULT"
DEFAULT_ROTATION_DAYS = 365
ROTATION_DAYS_RANGE = (90, 2560)
DELETION_WINDOW_RANGE = (7, 30)
DEFAULT_DELETION_WINDOW = 30
ON_DEMAND_ROTATION_LIMIT = 10
ENABLED, DISABLED, PENDING_DELETION = "Enabled", "Disabled", "PendingDeletion"
_ALIAS_RE = re.compile(r"^alias/[a-zA-Z0-9/_-]+$")


def is_managed(key: Record) -> bool:
    return bool(key["key_manager"] == "AWS")


class Kms:
    """Use cases of the key service. Every method that takes a Caller is an API action."""

    def __init__(self, engine: Engine, root_secret: bytes, clock: Clock) -> None:
        self._engine = engine
        self._box = kms_crypto.MaterialBox(root_secret)
        self.clock = clock

    # ------------------------------------------------------------------ resolving keys
    def _resolve(self, conn: Connection, account: str, region: str, ref: str) -> Record:
        """The live key a KeyId names within ``account``/``region``; raises KeyNotFound."""
        if ref.startswith("arn:"):
            parsed = arns.Arn.parse(ref)
            if parsed.service != "kms" or (parsed.account, parsed.region) != (account, region):
                raise err.KeyNotFound(key=ref)
            if parsed.resource.startswith("alias/"):
                return self._by_alias(conn, account, region, parsed.resource, ref)
            if not parsed.resource.startswith("key/"):
                raise err.KeyNotFound(key=ref)
            key = catalog.kms.find_key(conn, arn=ref)
        elif ref.startswith("alias/"):
            return self._by_alias(conn, account, region, ref, ref)
        else:
            key = catalog.kms.find_key(conn, key_id=ref)
        if key is None or (key["account_id"], key["region"]) != (account, region):
            raise err.KeyNotFound(key=ref)
        return _live(key, ref)

    def _by_alias(
        self, conn: Connection, account: str, region: str, alias: str, ref: str
    ) -> Record:
        row = catalog.kms.find_alias(conn, account_id=account, region=region, alias_name=alias)
        if row is None and alias == MANAGED_BACKUP_ALIAS:
            return self._create_managed(conn, account, region)
        if row is None:
            raise err.KeyNotFound(key=ref)
        return _live(catalog.kms.get_key_by_arn(conn, row["target_key_arn"]), ref)

    def _key(self, caller: Caller, ref: str) -> Record:
        with catalog.db.transaction(self._engine) as conn:
            return self._resolve(conn, caller.account_id, caller.region, ref)

    # ------------------------------------------------------------------ creating keys
    def _insert_key(
        self, conn: Connection, account: str, region: str, now: datetime, **fields: Any
    ) -> Record:
        key_id = ids.new_uuid()
        arn = arns.build("kms", region, account, f"key/{key_id}")
        values: Record = {
            "arn": arn,
            "key_id": key_id,
            "account_id": account,
            "region": region,
            "description": "",
            "key_usage": "ENCRYPT_DECRYPT",
            "key_spec": ALGORITHM,
            "origin": "AWS_KMS",
            "key_manager": "CUSTOMER",
            "key_state": ENABLED,
            "creation_date": now,
            "rotation_enabled": False,
            "current_version": 1,
            **fields,
        }
        key = catalog.kms.insert_key(conn, **values)
        sealed = self._box.seal(kms_crypto.new_material(), arn, 1)
        catalog.kms.add_version(conn, arn, 1, sealed, "INITIAL", now)
        return key

    def _create_managed(self, conn: Connection, account: str, region: str) -> Record:
        now = self.clock.now()
        try:
            with conn.begin_nested():
                key = self._insert_key(
                    conn,
                    account,
                    region,
                    now,
                    description="Default key that protects my Backup vaults "
                    "when no other key is defined",
                    key_manager="AWS",
                    rotation_enabled=True,
                    rotation_period_days=DEFAULT_ROTATION_DAYS,
                    next_rotation_date=now + timedelta(days=DEFAULT_ROTATION_DAYS),
                )
                catalog.kms.create_alias(
                    conn,
                    account_id=account,
                    region=region,
                    alias_name=MANAGED_BACKUP_ALIAS,
                    key_arn=key["arn"],
                    now=now,
                )
        except AlreadyExists:  # a concurrent first use created it
            row = catalog.kms.find_alias(
                conn, account_id=account, region=region, alias_name=MANAGED_BACKUP_ALIAS
            )
            assert row is not None
            return catalog.kms.get_key_by_arn(conn, row["target_key_arn"])
        return key

    def create_key(
        self,
        caller: Caller,
        *,
        description: str = "",
        key_usage: str | None = None,
        key_spec: str | None = None,
        origin: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Record:
        """CreateKey: a customer managed symmetric encryption key, enabled."""
        _only("KeyUsage", key_usage, "ENCRYPT_DECRYPT")
        _only("KeySpec", key_spec, ALGORITHM)
        _only("Origin", origin, "AWS_KMS")
        with catalog.db.transaction(self._engine) as conn:
            key = self._insert_key(
                conn, caller.account_id, caller.region, caller.now, description=description
            )
            catalog.tags.tag(conn, key["arn"], dict(tags or {}))
        return key

    def describe_key(self, caller: Caller, ref: str) -> Record:
        return self._key(caller, ref)

    def list_keys(
        self, caller: Caller, *, limit: int | None = None, marker: str | None = None
    ) -> catalog.pagination.Page:
        with catalog.db.transaction(self._engine) as conn:
            return catalog.kms.list_keys(
                conn, account_id=caller.account_id, region=caller.region, limit=limit, token=marker
            )

    # ------------------------------------------------------------------ aliases
    def create_alias(self, caller: Caller, alias_name: str, target: str) -> None:
        """CreateAlias: ``target`` is a key id or key ARN of a customer managed key."""
        _check_alias_name(alias_name)
        if target.startswith("alias/") or ":alias/" in target:
            raise err.KmsValidation(detail="TargetKeyId must be a key id or key ARN")
        with catalog.db.transaction(self._engine) as conn:
            key = self._resolve(conn, caller.account_id, caller.region, target)
            if is_managed(key):
                raise err.UnsupportedKmsOperation(detail="aliases of AWS managed keys are fixed")
            _require_not_pending(key, "CreateAlias")
            try:
                catalog.kms.create_alias(
                    conn,
                    account_id=caller.account_id,
                    region=caller.region,
                    alias_name=alias_name,
                    key_arn=key["arn"],
                    now=caller.now,
                )
            except AlreadyExists:
                raise err.AliasExists(name=alias_name) from None

    def delete_alias(self, caller: Caller, alias_name: str) -> None:
        if alias_name.startswith("alias/aws/"):
            raise err.ReservedAlias(name=alias_name)
        with catalog.db.transaction(self._engine) as conn:
            removed = catalog.kms.delete_alias(
                conn, account_id=caller.account_id, region=caller.region, alias_name=alias_name
            )
        if not removed:
            raise err.AliasNotFound(name=alias_name)

    def list_aliases(
        self,
        caller: Caller,
        *,
        key_ref: str | None = None,
        limit: int | None = None,
        marker: str | None = None,
    ) -> catalog.pagination.Page:
        with catalog.db.transaction(self._engine) as conn:
            key_arn = None
            if key_ref:
                key_arn = self._resolve(conn, caller.account_id, caller.region, key_ref)["arn"]
            return catalog.kms.list_aliases(
                conn,
                account_id=caller.account_id,
                region=caller.region,
                key_arn=key_arn,
                limit=limit,
                token=marker,
            )

    # ------------------------------------------------------------------ key state
    def _update(self, caller: Caller, ref: str, action: str, **changes: Any) -> Record:
        with catalog.db.transaction(self._engine) as conn:
            key = self._resolve(conn, caller.account_id, caller.region, ref)
            _check_customer(key, action)
            _require_not_pending(key, action)
            return catalog.kms.update_key(conn, key["arn"], **changes)

    def enable_key(self, caller: Caller, ref: str) -> Record:
        return self._update(caller, ref, "EnableKey", key_state=ENABLED)

    def disable_key(self, caller: Caller, ref: str) -> Record:
        return self._update(caller, ref, "DisableKey", key_state=DISABLED)

    def enable_key_rotation(
        self, caller: Caller, ref: str, period_days: int | None = None
    ) -> Record:
        days = DEFAULT_ROTATION_DAYS if period_days is None else period_days
        low, high = ROTATION_DAYS_RANGE
        if not low <= days <= high:
            raise err.KmsValidation(
                detail=f"RotationPeriodInDays must be {low}..{high}, got {days}"
            )
        self._require_enabled(caller, ref, "EnableKeyRotation")
        return self._update(
            caller,
            ref,
            "EnableKeyRotation",
            rotation_enabled=True,
            rotation_period_days=days,
            next_rotation_date=caller.now + timedelta(days=days),
        )

    def disable_key_rotation(self, caller: Caller, ref: str) -> Record:
        self._require_enabled(caller, ref, "DisableKeyRotation")
        return self._update(
            caller, ref, "DisableKeyRotation", rotation_enabled=False, next_rotation_date=None
        )

    def _require_enabled(self, caller: Caller, ref: str, action: str) -> Record:
        key = self._key(caller, ref)
        _require_usable(key, action)
        return key

    def rotation_status(self, caller: Caller, ref: str) -> Record:
        """GetKeyRotationStatus's fields, from the key row."""
        key = self._key(caller, ref)
        _require_not_pending(key, "GetKeyRotationStatus")
        return key

    def rotate_key_on_demand(self, caller: Caller, ref: str) -> Record:
        """RotateKeyOnDemand: a new version now; the automatic schedule is unchanged."""
        key = self._require_enabled(caller, ref, "RotateKeyOnDemand")
        _check_customer(key, "RotateKeyOnDemand")
        with catalog.db.transaction(self._engine) as conn:
            done = [
                v
                for v in catalog.kms.versions(conn, key["arn"])
                if v["rotation_type"] == "ON_DEMAND"
            ]
            if len(done) >= ON_DEMAND_ROTATION_LIMIT:
                raise err.RotationLimitExceeded(key_arn=key["arn"], limit=ON_DEMAND_ROTATION_LIMIT)
            return self._rotate(
                conn, key, "ON_DEMAND", caller.now, on_demand_rotation_start=caller.now
            )

    def _rotate(
        self, conn: Connection, key: Record, kind: str, now: datetime, **changes: Any
    ) -> Record:
        version = int(key["current_version"]) + 1
        sealed = self._box.seal(kms_crypto.new_material(), key["arn"], version)
        catalog.kms.add_version(conn, key["arn"], version, sealed, kind, now)
        return catalog.kms.update_key(conn, key["arn"], current_version=version, **changes)

    # ------------------------------------------------------------------ deletion
    def schedule_key_deletion(
        self, caller: Caller, ref: str, window_days: int | None = None
    ) -> Record:
        days = DEFAULT_DELETION_WINDOW if window_days is None else window_days
        low, high = DELETION_WINDOW_RANGE
        if not low <= days <= high:
            raise err.KmsValidation(detail=f"PendingWindowInDays must be {low}..{high}, got {days}")
        return self._update(
            caller,
            ref,
            "ScheduleKeyDeletion",
            key_state=PENDING_DELETION,
            deletion_date=caller.now + timedelta(days=days),
            pending_window_days=days,
        )

    def cancel_key_deletion(self, caller: Caller, ref: str) -> Record:
        """CancelKeyDeletion: the key comes back Disabled, as on AWS."""
        with catalog.db.transaction(self._engine) as conn:
            key = self._resolve(conn, caller.account_id, caller.region, ref)
            if key["key_state"] != PENDING_DELETION:
                raise err.KeyInvalidState(
                    key_arn=key["arn"], state=key["key_state"], action="CancelKeyDeletion"
                )
            return catalog.kms.update_key(
                conn, key["arn"], key_state=DISABLED, deletion_date=None, pending_window_days=None
            )

    def sweep(self, now: datetime) -> tuple[list[str], list[str]]:
        """Rotate keys whose rotation date has come, delete keys past their deletion date.

        Returns ``(rotated, deleted)`` key ARNs. Deleting destroys every material version.
        """
        with catalog.db.transaction(self._engine) as conn:
            rotated = [
                self._rotate_due(conn, k, now) for k in catalog.kms.keys_due_for_rotation(conn, now)
            ]
            deleted = [self._destroy(conn, k) for k in catalog.kms.keys_due_for_deletion(conn, now)]
        return rotated, deleted

    def _rotate_due(self, conn: Connection, key: Record, now: datetime) -> str:
        period = timedelta(days=int(key["rotation_period_days"] or DEFAULT_ROTATION_DAYS))
        due = key["next_rotation_date"] + period
        while due <= now:  # a server that slept through several periods rotates once
            due += period
        self._rotate(conn, key, "AUTOMATIC", now, next_rotation_date=due)
        return str(key["arn"])

    def _destroy(self, conn: Connection, key: Record) -> str:
        catalog.kms.destroy_versions(conn, key["arn"])
        catalog.kms.delete_aliases_of(conn, key["arn"])
        catalog.tags.delete_all(conn, key["arn"])
        catalog.kms.update_key(conn, key["arn"], key_state=catalog.kms.DELETED)
        return str(key["arn"])

    # ------------------------------------------------------------------ tags
    def tag_resource(self, caller: Caller, ref: str, tags: Mapping[str, str]) -> None:
        with catalog.db.transaction(self._engine) as conn:
            key = self._resolve(conn, caller.account_id, caller.region, ref)
            _require_not_pending(key, "TagResource")
            catalog.tags.tag(conn, key["arn"], dict(tags))

    def untag_resource(self, caller: Caller, ref: str, keys: list[str]) -> None:
        with catalog.db.transaction(self._engine) as conn:
            key = self._resolve(conn, caller.account_id, caller.region, ref)
            _require_not_pending(key, "UntagResource")
            catalog.tags.untag(conn, key["arn"], keys)

    def list_resource_tags(self, caller: Caller, ref: str) -> dict[str, str]:
        with catalog.db.transaction(self._engine) as conn:
            key = self._resolve(conn, caller.account_id, caller.region, ref)
            return catalog.tags.list_for(conn, key["arn"])

    # ------------------------------------------------------------------ cryptography
    def encrypt(
        self, caller: Caller, ref: str, plaintext: bytes, context: Mapping[str, str] | None = None
    ) -> tuple[bytes, str]:
        """Encrypt: ``(ciphertext blob, key ARN)`` under the key's newest version."""
        key = self._require_enabled(caller, ref, "Encrypt")
        return self._seal(key, plaintext, kms_crypto.context_bytes(context)), str(key["arn"])

    def generate_data_key(
        self,
        caller: Caller,
        ref: str,
        *,
        number_of_bytes: int | None = None,
        key_spec: str | None = None,
        context: Mapping[str, str] | None = None,
    ) -> tuple[bytes, bytes, str]:
        """GenerateDataKey: ``(plaintext, ciphertext blob, key ARN)``."""
        size = _data_key_size(number_of_bytes, key_spec)
        data_key = kms_crypto.random_data_key(size)
        blob, arn = self.encrypt(caller, ref, data_key, context)
        return data_key, blob, arn

    def decrypt(
        self,
        caller: Caller,
        blob: bytes,
        context: Mapping[str, str] | None = None,
        key_ref: str | None = None,
    ) -> tuple[bytes, str]:
        """Decrypt: ``(plaintext, key ARN)``; the blob names its key and version."""
        key_id, _ = _blob_header(blob)
        with catalog.db.transaction(self._engine) as conn:
            key = catalog.kms.find_key(conn, key_id=key_id)
            if key is None or (key["account_id"], key["region"]) != (
                caller.account_id,
                caller.region,
            ):
                raise err.InvalidCiphertext(detail="no key of this account and region sealed it")
            key = _live(key, key["arn"])
            if key_ref is not None:
                given = self._resolve(conn, caller.account_id, caller.region, key_ref)
                if given["arn"] != key["arn"]:
                    raise err.IncorrectKey(actual=key["arn"], given=key_ref)
        _require_usable(key, "Decrypt")
        return self._open(key, blob, kms_crypto.context_bytes(context)), str(key["arn"])

    def _seal(self, key: Record, plaintext: bytes, aad: bytes) -> bytes:
        version = int(key["current_version"])
        material = self._material(key, version)
        return kms_crypto.encrypt(material, key["key_id"], version, plaintext, aad)

    def _open(self, key: Record, blob: bytes, aad: bytes) -> bytes:
        _, version = _blob_header(blob)
        material = self._material(key, version)
        try:
            return kms_crypto.decrypt(material, blob, aad)
        except (primitives.AuthenticationFailed, kms_crypto.InvalidBlob):
            raise err.InvalidCiphertext(
                detail="it fails authentication (damaged, or another encryption context)"
            ) from None

    def _material(self, key: Record, version: int) -> bytes:
        with catalog.db.transaction(self._engine) as conn:
            row = catalog.kms.get_version(conn, key["arn"], version)
        if row is None:
            raise err.InvalidCiphertext(detail=f"the key has no version {version}")
        return self._box.open(row["sealed_material"], key["arn"], version)

    # ------------------------------------------------------------------ vault keys (internal)
    def managed_backup_key(self, account: str, region: str) -> Record:
        """The AWS managed ``alias/aws/backup`` key of an account+region (created if new)."""
        with catalog.db.transaction(self._engine) as conn:
            return self._resolve(conn, account, region, MANAGED_BACKUP_ALIAS)

    def key_for_vault(self, account: str, region: str, ref: str) -> Record:
        """The key a new vault names in EncryptionKeyArn; it must be usable now."""
        with catalog.db.transaction(self._engine) as conn:
            key = self._resolve(conn, account, region, ref)
        _require_usable(key, "CreateBackupVault")
        return key

    def wrap(self, key_arn: str, secret: bytes, aad: bytes, action: str) -> tuple[bytes, int]:
        """Seal a repository secret under the key's newest version: ``(blob, version)``."""
        key = self._vault_key(key_arn)
        _require_usable(key, action)
        return self._seal(key, secret, aad), int(key["current_version"])

    def unwrap(self, key_arn: str, blob: bytes, aad: bytes, action: str) -> bytes:
        """Open a repository secret; a disabled or deleted key refuses with a clear error."""
        key = self._vault_key(key_arn)
        _require_usable(key, action)
        if _blob_header(blob)[0] != key["key_id"]:
            raise err.InvalidCiphertext(detail=f"the key slot was not sealed by {key_arn}")
        return self._open(key, blob, aad)

    def _vault_key(self, key_arn: str) -> Record:
        with catalog.db.transaction(self._engine) as conn:
            key = catalog.kms.find_key(conn, arn=key_arn)
        if key is None:
            raise err.KeyNotFound(key=key_arn)
        if key["key_state"] == catalog.kms.DELETED:
            raise err.KeyDeleted(key_arn=key_arn, date=_day(key["deletion_date"]))
        return key


# ---------------------------------------------------------------------- pure rules


def _day(when: datetime | None) -> str:
    return when.date().isoformat() if when else "an unknown date"


def _live(key: Record, ref: str) -> Record:
    if key["key_state"] == catalog.kms.DELETED:
        raise err.KeyNotFound(key=ref)
    return key


def _only(field: str, value: str | None, supported: str) -> None:
    if value is not None and value != supported:
        raise err.UnsupportedKmsOperation(
            detail=f"{field} {value} is not supported by this server (only {supported})"
        )


def _check_alias_name(name: str) -> None:
    if name.startswith("alias/aws/"):
        raise err.ReservedAlias(name=name)
    if not _ALIAS_RE.match(name) or len(name) > 256:
        raise err.InvalidAliasName(
            name=name, detail="it must start with alias/ and use only a-z, A-Z, 0-9, /, _ and -"
        )


def _check_customer(key: Record, action: str) -> None:
    if is_managed(key):
        raise err.UnsupportedKmsOperation(
            detail=f"{action} is not allowed on the AWS managed key {key['arn']}"
        )


def _require_not_pending(key: Record, action: str) -> None:
    if key["key_state"] == PENDING_DELETION:
        raise err.KeyInvalidState(key_arn=key["arn"], state=PENDING_DELETION, action=action)


def _require_usable(key: Record, action: str) -> None:
    """Encrypt/Decrypt-class actions: Disabled -> DisabledException, pending -> invalid state."""
    if key["key_state"] == DISABLED:
        raise err.KeyDisabled(key_arn=key["arn"], action=action)
    if key["key_state"] != ENABLED:
        raise err.KeyInvalidState(key_arn=key["arn"], state=key["key_state"], action=action)


def _data_key_size(number_of_bytes: int | None, key_spec: str | None) -> int:
    specs = {"AES_256": 32, "AES_128": 16}
    if (number_of_bytes is None) == (key_spec is None):
        raise err.KmsValidation(detail="give exactly one of NumberOfBytes and KeySpec")
    if key_spec is not None:
        if key_spec not in specs:
            raise err.KmsValidation(detail=f"KeySpec must be AES_256 or AES_128, got {key_spec}")
        return specs[key_spec]
    assert number_of_bytes is not None
    if not 1 <= number_of_bytes <= 1024:
        raise err.KmsValidation(detail="NumberOfBytes must be 1..1024")
    return number_of_bytes


def _blob_header(blob: bytes) -> tuple[str, int]:
    try:
        return kms_crypto.header(blob)
    except kms_crypto.InvalidBlob as exc:
        raise err.InvalidCiphertext(detail=str(exc)) from None
