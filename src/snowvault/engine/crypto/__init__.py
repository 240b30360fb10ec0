"""The one trust boundary: only this package touches ciphers, MACs and KDFs.

Everything else in snowvault handles opaque sealed bytes and calls these functions:

- :mod:`.primitives` — AEAD seal/open (AES-256-GCM), HKDF subkeys, keyed BLAKE3 ids,
  content hashes, and the passphrase KDF (scrypt).
- :mod:`.keyslots` — the repository secret wrapped in key slots (passphrase, raw key,
  external wrapper such as KMS).
- :mod:`.keys` — :class:`RepositoryKeys`, the subkeys derived from one repository secret.
- :mod:`.secretbox` — sealing small secrets (access keys, key material) under a
  purpose-derived server key, and the server-held repository key wrapper.

Cheap KDF parameters for tests are an explicit argument (``KdfParams.for_tests()``),
never a default.
"""

from snowvault.engine.crypto.keys import RepositoryKeys
from snowvault.engine.crypto.keyslots import KdfParams, KeySlot, KeyWrapper
from snowvault.engine.crypto.primitives import AuthenticationFailed, content_hash, random_bytes
from snowvault.engine.crypto.secretbox import BoxKeyWrapper, SecretBox

__all__ = [
    "AuthenticationFailed",
    "BoxKeyWrapper",
    "SecretBox",
    "KdfParams",
    "KeySlot",
    "KeyWrapper",
    "RepositoryKeys",
    "content_hash",
    "random_bytes",
]
