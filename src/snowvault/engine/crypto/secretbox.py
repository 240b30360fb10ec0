"""Sealing small secrets under a server-held key, and a key wrapper built on it.

The server's root secret never seals anything directly: each purpose derives its own
key (``SecretBox(root, "access-keys")``), so a leak of one sealed value tells nothing
about another purpose.

    >>> box = SecretBox(b"r" * 32, "access-keys")
    >>> box.open(box.seal(b"s3cr3t", b"AKIA..."), b"AKIA...")
    b's3cr3t'
"""

from __future__ import annotations

from typing import Any

from snowvault.engine.crypto import primitives


class SecretBox:
    def __init__(self, root_secret: bytes, purpose: str) -> None:
        self._sealer = primitives.Sealer(
            primitives.hkdf(root_secret, f"snowvault/secretbox/{purpose}".encode())
        )

    def seal(self, data: bytes, context: bytes = b"") -> bytes:
        return self._sealer.seal(data, context)

    def open(self, sealed: bytes, context: bytes = b"") -> bytes:
        """Raises primitives.AuthenticationFailed when the value was not sealed here."""
        return self._sealer.open(sealed, context)


class BoxKeyWrapper:
    """A :class:`~snowvault.engine.crypto.keyslots.KeyWrapper` that wraps a repository
    secret with a :class:`SecretBox` (the server-held key until per-vault KMS keys)."""

    def __init__(self, box: SecretBox, name: str = "server", params: dict[str, Any] | None = None):
        self.name = name
        self._box = box
        self._params = dict(params or {})

    def params(self) -> dict[str, Any]:
        return dict(self._params)

    def wrap(self, secret: bytes, aad: bytes) -> bytes:
        return self._box.seal(secret, aad)

    def unwrap(self, wrapped: bytes, aad: bytes, params: dict[str, Any]) -> bytes:
        return self._box.open(wrapped, aad)
