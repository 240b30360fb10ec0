"""Vault secrets wrapped by KMS keys: the KMS implementation of the VaultKeys seam.

    keys = KmsVaultKeys(kms_service, engine)
    arn, key_type = keys.choose(region="us-east-1", account_id="123456789012", requested=None)
    Repository.init(backend, wrapper=keys.wrapper(arn))      # external slot "kms"

A vault without EncryptionKeyArn uses the account's AWS managed ``alias/aws/backup`` key
(EncryptionKeyType AWS_OWNED_KMS_KEY, the enum's only non-customer value); a vault
naming a key uses it (CUSTOMER_MANAGED_KMS_KEY). The slot stores ``{key_arn,
key_version}``; its wrapped value is a KMS ciphertext blob, so a rotated key still opens
slots sealed by older versions. A disabled key refuses to open the vault (backups and
restores fail with DisabledException's message); a deleted key leaves the slot
unopenable by anyone, and the sweep also removes exported passphrase slots from vaults
using it (see docs/design/keys.md, "Crypto-shredding and recovery keys").

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from snowvault.control import catalog
from snowvault.control.model import passphrase as passphrase_rule
from snowvault.control.services import authorization, vaults
from snowvault.control.services import kms as kms_service
from snowvault.control.services.base import Caller, Deps
from snowvault.core.errors import InvalidInput, SnowvaultError
from snowvault.engine import crypto
from snowvault.engine.backends.url import open_backend
from snowvault.engine.crypto import keyslots

log = logging.getLogger("snowvault.kms")

WRAPPER_NAME = "kms"
CUSTOMER_KEY_TYPE = "CUSTOMER_MANAGED_KMS_KEY"
MANAGED_KEY_TYPE = "AWS_OWNED_KMS_KEY"
_USE = "backups into and restores from vaults encrypted with it"


class KmsKeyWrapper:
    """A :class:`~snowvault.engine.crypto.KeyWrapper` whose key is one KMS key."""

    name = WRAPPER_NAME

    def __init__(self, kms: kms_service.Kms, key_arn: str) -> None:
        self._kms = kms
        self._key_arn = key_arn
        self._version: int | None = None

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key_arn": self._key_arn}
        if self._version is not None:
            out["key_version"] = self._version
        return out

    def wrap(self, secret: bytes, aad: bytes) -> bytes:
        blob, self._version = self._kms.wrap(self._key_arn, secret, aad, _USE)
        return blob

    def unwrap(self, wrapped: bytes, aad: bytes, params: dict[str, Any]) -> bytes:
        if params.get("key_arn") != self._key_arn:
            raise crypto.AuthenticationFailed("slot of another key")
        return self._kms.unwrap(self._key_arn, wrapped, aad, _USE)


class KmsVaultKeys:
    """VaultKeys backed by the key service."""

    key_type = MANAGED_KEY_TYPE  # the default key's type; choose() gives each vault's

    def __init__(self, kms: kms_service.Kms, engine: Engine) -> None:
        self.kms = kms
        self._engine = engine

    def new_key_arn(self, *, region: str, account_id: str) -> str:
        return str(self.kms.managed_backup_key(account_id, region)["arn"])

    def choose(self, *, region: str, account_id: str, requested: str | None) -> tuple[str, str]:
        """``(key ARN, EncryptionKeyType)`` for a new vault; ``requested`` is any KeyId."""
        if not requested:
            return self.new_key_arn(region=region, account_id=account_id), MANAGED_KEY_TYPE
        key = self.kms.key_for_vault(account_id, region, requested)
        kind = MANAGED_KEY_TYPE if kms_service.is_managed(key) else CUSTOMER_KEY_TYPE
        return str(key["arn"]), kind

    def wrapper(self, key_arn: str) -> crypto.KeyWrapper:
        return KmsKeyWrapper(self.kms, key_arn)

    def sweep(self, now: datetime) -> None:
        """Rotate and delete keys whose time has come; shred vaults of deleted keys."""
        rotated, deleted = self.kms.sweep(now)
        for arn in rotated:
            log.info("kms key %s rotated (automatic)", arn)
        for arn in deleted:
            log.warning("kms key %s deleted: its key material is destroyed", arn)
            self.shred_vaults(arn)

    def shred_vaults(self, key_arn: str) -> None:
        """Remove every key slot not wrapped by ``key_arn`` from the vaults using it."""
        with catalog.db.transaction(self._engine) as conn:
            vaults = catalog.kms.vaults_using_key(conn, key_arn)
        for vault in vaults:
            removed = _remove_foreign_slots(vault["storage_url"])
            log.warning(
                "vault %s: key %s deleted; removed %d recovery key slot(s)",
                vault["arn"],
                key_arn,
                removed,
            )


def _remove_foreign_slots(storage_url: str) -> int:
    """Delete the non-KMS slots (exported passphrases) of one repository."""
    backend = open_backend(storage_url)
    removed = 0
    try:
        for info in list(backend.list("keys/")):
            slot = keyslots.KeySlot.from_bytes(backend.get(info.name))
            if slot.type == "external" and slot.body.get("wrapper") == WRAPPER_NAME:
                continue
            with contextlib.suppress(SnowvaultError):
                backend.delete(info.name)
                removed += 1
    finally:
        backend.close()
    return removed


MIN_PASSPHRASE = passphrase_rule.MIN_LENGTH
EXPORT_ACTION = "snowvault:ExportRecoveryKey"  # not granted by backup:* or kms:*


def export_recovery_key(
    deps: Deps, caller: Caller, vault_name: str, passphrase: str
) -> dict[str, str]:
    """Add a passphrase slot to a vault's repository, for offline disaster recovery.

    Who may ask: a principal allowed ``snowvault:ExportRecoveryKey`` on the vault (the
    root user has it). What it reaches: a new key slot in that vault's repository, a
    second way in that does not depend on KMS — so the passphrase must be strong
    (:mod:`snowvault.control.model.passphrase`: 12+ characters and ~50 bits by a
    simple estimate; InvalidInput naming the rule otherwise, checked after
    authorization). Every attempt that reaches a vault is audited (log line
    ``audit: ExportRecoveryKey`` with outcome, vault, principal, source IP and time;
    never the passphrase). Returns the repository URL and the new slot id.
    """
    vault = vaults.get(deps, caller, vault_name)
    authorization.authorize(
        deps, caller, EXPORT_ACTION, str(vault["arn"]), vault_arn=str(vault["arn"])
    )
    verdict = passphrase_rule.check(passphrase)
    if not verdict.ok:
        _audit(caller, vault, "refused", "reason=weak-passphrase")
        raise InvalidInput(
            detail=f"the recovery passphrase is too weak (estimated {verdict.bits:.0f} bits, "
            f"{verdict.length} characters): it needs {passphrase_rule.RULE}"
        )
    with vaults.open_repository(deps, vault) as repo:
        slot_id = repo.add_key_slot(password=passphrase)
    _audit(caller, vault, "exported", f"slot={slot_id}")
    return {
        "BackupVaultArn": str(vault["arn"]),
        "RepositoryUrl": str(vault["storage_url"]),
        "KeySlotId": slot_id,
    }


def _audit(caller: Caller, vault: dict[str, Any], outcome: str, detail: str) -> None:
    """The audit record of an export: one WARNING line on the ``snowvault.kms`` logger."""
    log.warning(
        "audit: ExportRecoveryKey outcome=%s vault=%s %s principal=%s source_ip=%s time=%s",
        outcome,
        vault["arn"],
        detail,
        caller.principal_arn,
        caller.source_ip or "-",
        caller.now.isoformat(),
    )
