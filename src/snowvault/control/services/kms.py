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

Key policies: each key has one, named ``default`` (CreateKey's Policy, or AWS's default
"Enable IAM User Permissions" policy that delegates to the account's IAM). Every method
that names a key decides, once it has the key, as KMS does
(``services.authorization.authorize_key``): no explicit Deny in the key policy or the
caller's identity policies, and the key policy allows the caller directly, or allows the
account and an identity policy allows, or a grant (CreateGrant ... RevokeGrant) gives the
operation to the caller, its encryption-context constraints holding. The account's root
user gets no shortcut. The API does not check identity policies first for these
operations (services.authorization.KMS_KEY_OPERATIONS).

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.engine import Connection, Engine

from snowvault.control import catalog
from snowvault.control.model import iam
from snowvault.control.model import kms as rules
from snowvault.control.services import authorization, paging
from snowvault.control.services import errors as err
from snowvault.control.services.base import Caller
from snowvault.control.services.errors import AccessDenied
from snowvault.core import arn as arns
from snowvault.core import ids
from snowvault.core.clock import Clock
from snowvault.core.errors import AlreadyExists, InvalidInput
from snowvault.engine.crypto import kms as kms_crypto
from snowvault.engine.crypto import primitives

Record = dict[str, Any]
T = TypeVar("T")

MANAGED_BACKUP_ALIAS = "alias/aws/backup"
ALGORITHM = "SYMMETRIC_DEFAULT"
DEFAULT_ROTATION_DAYS = rules.DEFAULT_ROTATION_DAYS
DEFAULT_DELETION_WINDOW = rules.DEFAULT_DELETION_WINDOW
ON_DEMAND_ROTATION_LIMIT = rules.ON_DEMAND_ROTATION_LIMIT
ENABLED, DISABLED, PENDING_DELETION = (
    rules.KeyState.ENABLED,
    rules.KeyState.DISABLED,
    rules.KeyState.PENDING_DELETION,
)
POLICY_NAME = "default"
MAX_POLICY_BYTES = 32 * 1024
GRANT_OPERATIONS = frozenset(
    {
        "Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
        "ReEncryptFrom", "ReEncryptTo", "Sign", "Verify", "GetPublicKey", "CreateGrant",
        "RetireGrant", "DescribeKey", "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext", "GenerateMac", "VerifyMac", "DeriveSharedSecret",
    }
)  # fmt: skip


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

    def _key(
        self, caller: Caller, ref: str, action: str, context: Mapping[str, str] | None = None
    ) -> Record:
        with catalog.db.transaction(self._engine) as conn:
            return self._resolve_as(conn, caller, ref, action, context)

    def _resolve_as(
        self,
        conn: Connection,
        caller: Caller,
        ref: str,
        action: str,
        context: Mapping[str, str] | None = None,
    ) -> Record:
        """The key ``ref`` names, once ``caller`` may do ``kms:<action>`` on it (key
        policy, identity policies, grants; ``context``: the encryption context of an
        operation that takes one)."""
        key = self._resolve(conn, caller.account_id, caller.region, ref)
        authorization.authorize_key(conn, caller, action, key, context)
        return key

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
        policy: str | None = None,
        bypass_lockout_check: bool = False,
    ) -> Record:
        """CreateKey: a customer managed symmetric encryption key, enabled, with ``policy``
        (validated) or the default key policy."""
        _only("KeyUsage", key_usage, "ENCRYPT_DECRYPT")
        _only("KeySpec", key_spec, ALGORITHM)
        _only("Origin", origin, "AWS_KMS")
        document = default_policy(caller.account_id) if policy is None else policy
        check_new_policy(document, caller, bypass_lockout_check)
        with catalog.db.transaction(self._engine) as conn:
            key = self._insert_key(
                conn,
                caller.account_id,
                caller.region,
                caller.now,
                description=description,
                policy=document,
            )
            catalog.tags.tag(conn, key["arn"], dict(tags or {}))
        return key

    def describe_key(self, caller: Caller, ref: str) -> Record:
        return self._key(caller, ref, "DescribeKey")

    def update_key_description(self, caller: Caller, ref: str, description: str) -> Record:
        return self._update(caller, ref, "UpdateKeyDescription", description=description)

    # ------------------------------------------------------------------ key policies
    def get_key_policy(self, caller: Caller, ref: str, name: str | None = None) -> str:
        """GetKeyPolicy: the key's one policy document (``default``)."""
        _check_policy_name(name)
        key = self._key(caller, ref, "GetKeyPolicy")
        return policy_of(key)

    def list_key_policies(self, caller: Caller, ref: str) -> list[str]:
        self._key(caller, ref, "ListKeyPolicies")
        return [POLICY_NAME]

    def put_key_policy(
        self,
        caller: Caller,
        ref: str,
        policy: str,
        name: str | None = None,
        bypass_lockout_check: bool = False,
    ) -> Record:
        """PutKeyPolicy: replace the key policy; the new one must let the caller put it
        again unless ``bypass_lockout_check`` (AWS's policy lockout safety check)."""
        _check_policy_name(name)
        check_new_policy(policy, caller, bypass_lockout_check)
        with catalog.db.transaction(self._engine) as conn:
            key = self._resolve_as(conn, caller, ref, "PutKeyPolicy")
            _check_customer(key, "PutKeyPolicy")
            _require_not_pending(key, "PutKeyPolicy")
            return catalog.kms.update_key(conn, key["arn"], policy=policy)

    def list_keys(
        self, caller: Caller, *, limit: int | None = None, marker: str | None = None
    ) -> catalog.pagination.Page:
        with _marker(), catalog.db.transaction(self._engine) as conn:
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
            key = self._resolve_as(conn, caller, target, "CreateAlias")
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

    def update_alias(self, caller: Caller, alias_name: str, target: str) -> None:
        """UpdateAlias: point an existing customer alias at another customer managed key."""
        if alias_name.startswith("alias/aws/"):
            raise err.ReservedAlias(name=alias_name)
        if target.startswith("alias/") or ":alias/" in target:
            raise err.KmsValidation(detail="TargetKeyId must be a key id or key ARN")
        with catalog.db.transaction(self._engine) as conn:
            key = self._resolve_as(conn, caller, target, "UpdateAlias")
            if is_managed(key):
                raise err.UnsupportedKmsOperation(detail="aliases of AWS managed keys are fixed")
            _require_not_pending(key, "UpdateAlias")
            changed = catalog.kms.update_alias(
                conn,
                account_id=caller.account_id,
                region=caller.region,
                alias_name=alias_name,
                key_arn=key["arn"],
                now=caller.now,
            )
        if not changed:
            raise err.AliasNotFound(name=alias_name)

    def list_aliases(
        self,
        caller: Caller,
        *,
        key_ref: str | None = None,
        limit: int | None = None,
        marker: str | None = None,
    ) -> catalog.pagination.Page:
        with _marker(), catalog.db.transaction(self._engine) as conn:
            key_arn = None
            if key_ref:
                key_arn = self._resolve_as(conn, caller, key_ref, "ListAliases")["arn"]
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
            key = self._resolve_as(conn, caller, ref, action)
            _check_customer(key, action)
            _require_not_pending(key, action)
            return catalog.kms.update_key(conn, key["arn"], **changes)

    def enable_key(self, caller: Caller, ref: str) -> Record:
        return self._update(caller, ref, "EnableKey", key_state=rules.NEXT_STATE["EnableKey"])

    def disable_key(self, caller: Caller, ref: str) -> Record:
        return self._update(caller, ref, "DisableKey", key_state=rules.NEXT_STATE["DisableKey"])

    def enable_key_rotation(
        self, caller: Caller, ref: str, period_days: int | None = None
    ) -> Record:
        days = DEFAULT_ROTATION_DAYS if period_days is None else period_days
        problem = rules.rotation_period_problem(days)
        if problem is not None:
            raise err.KmsValidation(detail=problem)
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

    def _require_enabled(
        self, caller: Caller, ref: str, action: str, context: Mapping[str, str] | None = None
    ) -> Record:
        key = self._key(caller, ref, action, context)
        _require_usable(key, action)
        return key

    def rotation_status(self, caller: Caller, ref: str) -> Record:
        """GetKeyRotationStatus's fields, from the key row. A key pending deletion answers
        too, with rotation off (AWS: it is not rotated while pending; cancelling the
        deletion brings the former status back)."""
        key = self._key(caller, ref, "GetKeyRotationStatus")
        if key["key_state"] == PENDING_DELETION:
            return dict(key, rotation_enabled=False, next_rotation_date=None)
        return key

    def list_key_rotations(self, caller: Caller, ref: str) -> list[Record]:
        """ListKeyRotations: every rotation after the initial material, oldest first."""
        with catalog.db.transaction(self._engine) as conn:
            key = self._resolve_as(conn, caller, ref, "ListKeyRotations")
            _check_customer(key, "ListKeyRotations")
            versions = catalog.kms.versions(conn, key["arn"])
        return [v for v in versions if v["rotation_type"] != "INITIAL"]

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
        problem = rules.pending_window_problem(days)
        if problem is not None:
            raise err.KmsValidation(detail=problem)
        return self._update(
            caller,
            ref,
            "ScheduleKeyDeletion",
            key_state=rules.NEXT_STATE["ScheduleKeyDeletion"],
            deletion_date=caller.now + timedelta(days=days),
            pending_window_days=days,
        )

    def cancel_key_deletion(self, caller: Caller, ref: str) -> Record:
        """CancelKeyDeletion: the key comes back Disabled, as on AWS."""
        with catalog.db.transaction(self._engine) as conn:
            key = self._resolve_as(conn, caller, ref, "CancelKeyDeletion")
            _require(key, rules.ACTION_NEEDS["CancelKeyDeletion"], "CancelKeyDeletion")
            return catalog.kms.update_key(
                conn,
                key["arn"],
                key_state=rules.NEXT_STATE["CancelKeyDeletion"],
                deletion_date=None,
                pending_window_days=None,
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
        due = rules.next_rotation(key["next_rotation_date"], key["rotation_period_days"], now)
        self._rotate(conn, key, "AUTOMATIC", now, next_rotation_date=due)
        return str(key["arn"])

    def _destroy(self, conn: Connection, key: Record) -> str:
        catalog.kms.destroy_versions(conn, key["arn"])
        catalog.kms.delete_aliases_of(conn, key["arn"])
        catalog.kms.delete_grants_of(conn, key["arn"])
        catalog.tags.delete_all(conn, key["arn"])
        catalog.kms.update_key(conn, key["arn"], key_state=catalog.kms.DELETED)
        return str(key["arn"])

    # ------------------------------------------------------------------ tags
    def tag_resource(self, caller: Caller, ref: str, tags: Mapping[str, str]) -> None:
        with catalog.db.transaction(self._engine) as conn:
            key = self._resolve_as(conn, caller, ref, "TagResource")
            _require_not_pending(key, "TagResource")
            catalog.tags.tag(conn, key["arn"], dict(tags))

    def untag_resource(self, caller: Caller, ref: str, keys: list[str]) -> None:
        with catalog.db.transaction(self._engine) as conn:
            key = self._resolve_as(conn, caller, ref, "UntagResource")
            _require_not_pending(key, "UntagResource")
            catalog.tags.untag(conn, key["arn"], keys)

    def list_resource_tags(self, caller: Caller, ref: str) -> dict[str, str]:
        with catalog.db.transaction(self._engine) as conn:
            key = self._resolve_as(conn, caller, ref, "ListResourceTags")
            return catalog.tags.list_for(conn, key["arn"])

    # ------------------------------------------------------------------ grants
    def create_grant(
        self,
        caller: Caller,
        ref: str,
        grantee: str,
        operations: Sequence[str],
        *,
        retiring: str | None = None,
        constraints: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> Record:
        """CreateGrant: stored and listed; a retry with the same Name and parameters
        returns the grant it made. The grant gives its grantee the operations it lists on
        the key (see the module docstring)."""
        bad = sorted(set(operations) - GRANT_OPERATIONS)
        if not operations or bad:
            raise err.KmsValidation(detail=f"Operations must be grant operations, not {bad}")
        ops = json.dumps(sorted(set(operations)))
        limits = json.dumps(dict(constraints), sort_keys=True) if constraints else None
        with catalog.db.transaction(self._engine) as conn:
            key = self._resolve_as(conn, caller, ref, "CreateGrant")
            _require_not_pending(key, "CreateGrant")
            if name:
                seen = catalog.kms.find_grant_by_name(conn, key["arn"], name)
                same = (grantee, retiring, ops, limits)
                if seen and same == (
                    seen["grantee_principal"],
                    seen["retiring_principal"],
                    seen["operations"],
                    seen["constraints"],
                ):
                    return seen
            return catalog.kms.insert_grant(
                conn,
                grant_id=ids.new_hex(32),
                key_arn=key["arn"],
                grant_token=ids.new_hex(48),
                name=name,
                grantee_principal=grantee,
                retiring_principal=retiring,
                issuing_account=f"arn:aws:iam::{caller.account_id}:root",
                operations=ops,
                constraints=limits,
                creation_date=caller.now,
            )

    def list_grants(
        self,
        caller: Caller,
        ref: str,
        *,
        grant_id: str | None = None,
        grantee: str | None = None,
        limit: int | None = None,
        marker: str | None = None,
    ) -> catalog.pagination.Page:
        with _marker(), catalog.db.transaction(self._engine) as conn:
            key = self._resolve_as(conn, caller, ref, "ListGrants")
            return catalog.kms.list_grants(
                conn,
                key_arn=key["arn"],
                grant_id=grant_id,
                grantee_principal=grantee,
                limit=limit,
                token=marker,
            )

    def list_retirable_grants(
        self,
        caller: Caller,
        retiring: str,
        *,
        limit: int | None = None,
        marker: str | None = None,
    ) -> catalog.pagination.Page:
        """ListRetirableGrants: grants on the caller's keys naming ``retiring``."""
        prefix = arns.build("kms", caller.region, caller.account_id, "key/")
        with _marker(), catalog.db.transaction(self._engine) as conn:
            return catalog.kms.list_grants(
                conn, retiring_principal=retiring, key_prefix=prefix, limit=limit, token=marker
            )

    def retire_grant(
        self,
        caller: Caller,
        *,
        grant_token: str | None = None,
        key_ref: str | None = None,
        grant_id: str | None = None,
    ) -> None:
        """RetireGrant by token, or by key and grant id: allowed to the retiring principal,
        to the grantee when the grant lists RetireGrant, and to the issuing account's root."""
        with catalog.db.transaction(self._engine) as conn:
            if grant_token:
                grant = catalog.kms.find_grant(conn, grant_token=grant_token)
                if grant is None:
                    raise err.InvalidGrantToken(detail="no grant has this token")
            elif key_ref and grant_id:
                key = self._resolve(conn, caller.account_id, caller.region, key_ref)
                grant = catalog.kms.find_grant(conn, grant_id=grant_id)
                if grant is None or grant["key_arn"] != key["arn"]:
                    raise err.InvalidGrantId(detail=f"{grant_id} is not a grant of {key['arn']}")
            else:
                raise err.KmsValidation(detail="give GrantToken, or KeyId and GrantId")
            if not _may_retire(grant, caller.principal_arn):
                raise AccessDenied(
                    detail=f"User: {caller.principal_arn} is not authorized to perform: "
                    f"kms:RetireGrant on resource: {grant['key_arn']}"
                )
            catalog.kms.delete_grant(conn, grant["grant_id"])

    def revoke_grant(self, caller: Caller, ref: str, grant_id: str) -> None:
        with catalog.db.transaction(self._engine) as conn:
            key = self._resolve_as(conn, caller, ref, "RevokeGrant")
            grant = catalog.kms.find_grant(conn, grant_id=grant_id)
            if grant is None or grant["key_arn"] != key["arn"]:
                raise err.GrantNotFound(grant=grant_id, key_arn=key["arn"])
            catalog.kms.delete_grant(conn, grant_id)

    # ------------------------------------------------------------------ cryptography
    def encrypt(
        self,
        caller: Caller,
        ref: str,
        plaintext: bytes,
        context: Mapping[str, str] | None = None,
        action: str = "Encrypt",
    ) -> tuple[bytes, str]:
        """Encrypt: ``(ciphertext blob, key ARN)`` under the key's newest version."""
        key = self._require_enabled(caller, ref, action, dict(context or {}))
        return self._seal(key, plaintext, kms_crypto.context_bytes(context)), str(key["arn"])

    def generate_random(self, number_of_bytes: int | None) -> bytes:
        """GenerateRandom: 1..1024 random bytes (no key, no key policy)."""
        if number_of_bytes is None or not 1 <= number_of_bytes <= 1024:
            raise err.KmsValidation(detail="NumberOfBytes must be 1..1024")
        return kms_crypto.random_data_key(number_of_bytes)

    def re_encrypt(
        self,
        caller: Caller,
        blob: bytes,
        destination: str,
        *,
        source_context: Mapping[str, str] | None = None,
        destination_context: Mapping[str, str] | None = None,
        source_ref: str | None = None,
    ) -> tuple[bytes, str, str]:
        """ReEncrypt: ``(new blob, source key ARN, destination key ARN)``; the plaintext
        never leaves the service. The caller needs kms:ReEncryptFrom on the source
        key and ReEncryptTo on the destination key."""
        plaintext, source = self.decrypt(
            caller, blob, source_context, key_ref=source_ref, action="ReEncryptFrom"
        )
        new_blob, target = self.encrypt(
            caller, destination, plaintext, destination_context, action="ReEncryptTo"
        )
        return new_blob, source, target

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
        blob, arn = self.encrypt(caller, ref, data_key, context, action="GenerateDataKey")
        return data_key, blob, arn

    def generate_data_key_without_plaintext(
        self,
        caller: Caller,
        ref: str,
        *,
        number_of_bytes: int | None = None,
        key_spec: str | None = None,
        context: Mapping[str, str] | None = None,
    ) -> tuple[bytes, str]:
        """GenerateDataKeyWithoutPlaintext: ``(ciphertext blob, key ARN)``."""
        size = _data_key_size(number_of_bytes, key_spec)
        data_key = kms_crypto.random_data_key(size)
        action = "GenerateDataKeyWithoutPlaintext"
        return self.encrypt(caller, ref, data_key, context, action=action)

    def decrypt(
        self,
        caller: Caller,
        blob: bytes,
        context: Mapping[str, str] | None = None,
        key_ref: str | None = None,
        action: str = "Decrypt",
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
            authorization.authorize_key(conn, caller, action, key, dict(context or {}))
            if key_ref is not None:
                given = self._resolve(conn, caller.account_id, caller.region, key_ref)
                if given["arn"] != key["arn"]:
                    raise err.IncorrectKey(actual=key["arn"], given=key_ref)
        _require_usable(key, action)
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


default_policy = rules.default_policy
"""AWS's default key policy: the account's IAM decides (``kms:*`` to the root)."""


def policy_of(key: Record) -> str:
    """The key's policy document (keys made before revision 0006 have the default)."""
    return str(key["policy"] or default_policy(key["account_id"]))


def parse_key_policy(document: str) -> iam.Policy:
    """A key policy parsed, or MalformedPolicyDocumentException naming the problem."""
    if len(document.encode()) > MAX_POLICY_BYTES:
        raise err.MalformedPolicy(detail=f"it is longer than {MAX_POLICY_BYTES} bytes")
    try:
        return iam.parse_policy(document, "resource")
    except InvalidInput as exc:
        raise err.MalformedPolicy(detail=str(exc)) from None


def check_new_policy(document: str, caller: Caller, bypass_lockout_check: bool) -> None:
    """Validate a new key policy; unless bypassed, it must let the caller put it again."""
    policy = parse_key_policy(document)
    if bypass_lockout_check:
        return
    any_key = arns.build("kms", caller.region, caller.account_id, "key/*")
    if rules.locks_out(policy, _asker(caller), any_key):
        raise err.MalformedPolicy(detail=rules.LOCKOUT_MESSAGE)


def _asker(caller: Caller) -> rules.Asker:
    return rules.Asker(caller.principal_arn, caller.account_id, caller.now, caller.source_ip)


def _check_policy_name(name: str | None) -> None:
    if name is not None and name != POLICY_NAME:
        raise err.PolicyNotFound(name=name)


def _may_retire(grant: Record, principal: str) -> bool:
    operations = json.loads(grant["operations"])
    account_root = grant["issuing_account"]
    return principal in (grant["retiring_principal"], account_root) or (
        principal == grant["grantee_principal"] and "RetireGrant" in operations
    )


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
    problem = rules.alias_problem(name)
    if problem is rules.AliasProblem.RESERVED:
        raise err.ReservedAlias(name=name)
    if problem is rules.AliasProblem.INVALID:
        raise err.InvalidAliasName(name=name, detail=rules.ALIAS_RULE)


def _check_customer(key: Record, action: str) -> None:
    if is_managed(key):
        raise err.UnsupportedKmsOperation(
            detail=f"{action} is not allowed on the AWS managed key {key['arn']}"
        )


def _require(key: Record, needs: rules.Needs, action: str) -> None:
    """Raise the error the key's state gives ``action`` (see model/kms.RULES)."""
    refused = rules.refusal(needs, key["key_state"])
    if refused is rules.Refusal.DISABLED:
        raise err.KeyDisabled(key_arn=key["arn"], action=action)
    if refused is rules.Refusal.INVALID_STATE:
        raise err.KeyInvalidState(key_arn=key["arn"], state=key["key_state"], action=action)


def _require_not_pending(key: Record, action: str) -> None:
    _require(key, rules.Needs.NOT_PENDING, action)


def _require_usable(key: Record, action: str) -> None:
    """Encrypt/Decrypt-class actions: Disabled -> DisabledException, pending -> invalid state."""
    _require(key, rules.Needs.USABLE, action)


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


def page_of(
    kind: str,
    items: Iterable[T],
    key: Callable[[T], str],
    *,
    limit: int | None,
    marker: str | None,
    default: int = 100,
    maximum: int = 1000,
) -> tuple[list[T], str | None]:
    """One page of a short KMS list held in memory (a key's policy names, rotations,
    tags) as KMS pages: at most ``limit`` (1-``maximum``, ``default``) after ``marker``;
    a Limit out of range is ValidationException, a Marker this server did not issue
    InvalidMarkerException."""
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= maximum
    ):
        raise err.KmsValidation(detail=f"Limit must be between 1 and {maximum}")
    with _marker():
        return paging.page(
            kind, items, key, limit=limit, token=marker, default=default, maximum=maximum
        )


@contextlib.contextmanager
def _marker() -> Iterator[None]:
    """A list's Marker that this server did not issue is KMS's InvalidMarkerException,
    not the Backup API's InvalidParameterValueException."""
    try:
        yield
    except catalog.pagination.InvalidToken as exc:
        raise err.InvalidMarker(detail=str(exc)) from None
