"""KMS key material and the envelope format of KMS ciphertext blobs.

A KMS key owns one or more *versions* of key material (256-bit AES keys); rotation adds a
version, every version keeps decrypting, and new encryptions use the newest. Material is
stored only sealed under the server root secret (:class:`MaterialBox`), bound to its key
ARN and version, so a sealed value copied onto another key or version fails to open.

A ciphertext blob (Encrypt, GenerateDataKey, a vault's wrapped repository secret) names
the key and version that sealed it, so Decrypt needs no KeyId::

    b"SVK1" | len(key_id) (1 byte) | key_id (ascii) | version (4 bytes, big-endian)
           | AES-256-GCM(material, plaintext, aad = header || encryption context)

    >>> material = new_material()
    >>> blob = encrypt(material, "k-1", 3, b"secret", b"ctx")
    >>> header(blob)
    ('k-1', 3)
    >>> decrypt(material, blob, b"ctx")
    b'secret'

Must not depend on anything outside ``snowvault.engine.crypto`` (no catalog, no services).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from snowvault.engine.crypto import primitives
from snowvault.engine.crypto.secretbox import SecretBox

MAGIC = b"SVK1"
MATERIAL_SIZE = primitives.KEY_SIZE
_VERSION_BYTES = 4


class InvalidBlob(ValueError):
    """Bytes that are not a snowvault KMS ciphertext blob (no key, version or body)."""


def new_material() -> bytes:
    """Fresh random key material for one key version."""
    return primitives.random_bytes(MATERIAL_SIZE)


def random_data_key(n: int) -> bytes:
    """GenerateDataKey's plaintext: ``n`` random bytes."""
    return primitives.random_bytes(n)


def context_bytes(context: Mapping[str, str] | None) -> bytes:
    """An encryption context as canonical bytes (order of the pairs does not matter)."""
    if not context:
        return b""
    return json.dumps(dict(context), sort_keys=True, separators=(",", ":")).encode()


def _header(key_id: str, version: int) -> bytes:
    raw = key_id.encode("ascii")
    if not 0 < len(raw) < 256:
        raise ValueError("key id must be 1..255 ascii bytes")
    return MAGIC + bytes([len(raw)]) + raw + version.to_bytes(_VERSION_BYTES, "big")


def encrypt(material: bytes, key_id: str, version: int, plaintext: bytes, aad: bytes) -> bytes:
    """Seal ``plaintext`` under one key version; the blob names key and version."""
    head = _header(key_id, version)
    return head + primitives.seal(material, plaintext, head + aad)


def _split(blob: bytes) -> tuple[str, int, bytes, bytes]:
    if len(blob) < len(MAGIC) + 1 or not blob.startswith(MAGIC):
        raise InvalidBlob("not a KMS ciphertext blob")
    n = blob[len(MAGIC)]
    end = len(MAGIC) + 1 + n + _VERSION_BYTES
    if n == 0 or len(blob) < end + primitives.OVERHEAD:
        raise InvalidBlob("truncated KMS ciphertext blob")
    try:
        key_id = blob[len(MAGIC) + 1 : len(MAGIC) + 1 + n].decode("ascii")
    except UnicodeDecodeError as exc:
        raise InvalidBlob("KMS ciphertext blob with a damaged key id") from exc
    version = int.from_bytes(blob[end - _VERSION_BYTES : end], "big")
    return key_id, version, blob[:end], blob[end:]


def header(blob: bytes) -> tuple[str, int]:
    """``(key_id, version)`` named by a blob; raises :class:`InvalidBlob`."""
    key_id, version, _, _ = _split(blob)
    return key_id, version


def decrypt(material: bytes, blob: bytes, aad: bytes) -> bytes:
    """Open a blob; raises :class:`InvalidBlob` or ``AuthenticationFailed``."""
    _, _, head, body = _split(blob)
    return primitives.open_sealed(material, body, head + aad)


class MaterialBox:
    """Seals key material under the root secret (purpose ``kms``), bound to key+version."""

    def __init__(self, root_secret: bytes) -> None:
        self._box = SecretBox(root_secret, "kms")

    @staticmethod
    def _context(key_arn: str, version: int) -> bytes:
        return f"snowvault/kms-material/v1|{key_arn}|{version}".encode()

    def seal(self, material: bytes, key_arn: str, version: int) -> bytes:
        return self._box.seal(material, self._context(key_arn, version))

    def open(self, sealed: bytes, key_arn: str, version: int) -> bytes:
        """Raises ``AuthenticationFailed`` if sealed for another key, version or root."""
        return self._box.open(sealed, self._context(key_arn, version))
