"""Which key protects a vault's repository secret: the VaultKeys seam.

The server's provider is :class:`~snowvault.control.services.kms_vault_keys.KmsVaultKeys`
(a vault's secret wrapped by its KMS key); service tests use
:class:`snowvault.testing.ServerVaultKeys` (one root-derived box, no KMS).

    arn, key_type = deps.vault_keys.choose(region=r, account_id=a, requested=None)
    Repository.init(backend, wrapper=deps.vault_keys.wrapper(arn))

Must not depend on the catalog, the scheduler or any interface.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from snowvault.engine import crypto


class VaultKeys(Protocol):
    key_type: str

    def new_key_arn(self, *, region: str, account_id: str) -> str:
        """The key a new vault will use."""
        ...

    def wrapper(self, key_arn: str) -> crypto.KeyWrapper:
        """The wrapper that seals and opens a repository secret under ``key_arn``."""
        ...

    def choose(self, *, region: str, account_id: str, requested: str | None) -> tuple[str, str]:
        """``(key ARN, EncryptionKeyType)`` of a new vault; ``requested``: its EncryptionKeyArn."""
        ...

    def sweep(self, now: datetime) -> None:
        """Periodic key work (KMS: automatic rotation, deletion after the waiting period)."""
        ...
