"""ServerVaultKeys: a VaultKeys provider without KMS, for service tests.

Every vault's repository secret is wrapped by one box derived from a root secret
(``SecretBox(root, "vault-keys")``); each vault still gets its own key id, reported as
``arn:aws:kms:REGION:ACCOUNT:key/<uuid>`` with EncryptionKeyType ``AWS_OWNED_KMS_KEY``.
A vault cannot name a key (``EncryptionKeyArn`` is refused) and there is no periodic
key work. The server itself uses services/kms_vault_keys.py (KmsVaultKeys).

    >>> keys = ServerVaultKeys(b"r" * 32)
    >>> arn = keys.new_key_arn(region="us-east-1", account_id="123456789012")
    >>> arn.startswith("arn:aws:kms:us-east-1:123456789012:key/")
    True
"""

from __future__ import annotations

from datetime import datetime

from snowvault.core import arn as arns
from snowvault.core import ids
from snowvault.core.errors import InvalidInput
from snowvault.engine import crypto

SERVER_KEY_TYPE = "AWS_OWNED_KMS_KEY"


class ServerVaultKeys:
    """Every vault key is the root secret's ``vault-keys`` box, under its own key id."""

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
