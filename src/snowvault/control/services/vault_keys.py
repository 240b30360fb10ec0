"""Which key protects a vault's repository secret: the seam for per-vault KMS keys.

Today every vault's secret is wrapped by a server-held key derived from the root secret
(``SecretBox(root, "vault-keys")``). Each vault still gets its own key *id*, reported as
``arn:aws:kms:REGION:ACCOUNT:key/<uuid>`` with EncryptionKeyType ``AWS_OWNED_KMS_KEY``
(a key the service owns, not one the customer manages). The KMS issue replaces
:class:`ServerVaultKeys` with a provider whose ``wrapper`` calls the vault's KMS key.

    >>> keys = ServerVaultKeys(b"r" * 32)
    >>> arn = keys.new_key_arn(region="us-east-1", account_id="123456789012")
    >>> arn.startswith("arn:aws:kms:us-east-1:123456789012:key/")
    True

Must not depend on the catalog, the scheduler or any interface.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from snowvault.core import arn as arns
from snowvault.core import ids
from snowvault.core.errors import InvalidInput
from snowvault.engine import crypto

SERVER_KEY_TYPE = "AWS_OWNED_KMS_KEY"


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


class ServerVaultKeys:
    """Every vault key is the server-held ``vault-keys`` box, under its own key id."""

    key_type = SERVER_KEY_TYPE

    def __init__(self, root_secret: bytes) -> None:
        self._box = crypto.SecretBox(root_secret, "vault-keys")

    def new_key_arn(self, *, region: str, account_id: str) -> str:
        return arns.build("kms", region, account_id, f"key/{ids.new_uuid()}")

    def wrapper(self, key_arn: str) -> crypto.KeyWrapper:
        return crypto.BoxKeyWrapper(self._box, name="server", params={"key_arn": key_arn})

    def choose(self, *, region: str, account_id: str, requested: str | None) -> tuple[str, str]:
        if requested:
            raise InvalidInput(detail="EncryptionKeyArn: this key provider has no KMS keys")
        return self.new_key_arn(region=region, account_id=account_id), self.key_type

    def sweep(self, now: datetime) -> None:
        return None
