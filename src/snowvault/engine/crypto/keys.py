"""The subkeys of one repository secret, each for one purpose (HKDF domain separation)."""

from __future__ import annotations

from dataclasses import dataclass, field

from snowvault.engine.crypto import primitives

SECRET_SIZE = 64


@dataclass(frozen=True)
class RepositoryKeys:
    """Derived once per open repository. ``secret`` never leaves the engine."""

    secret: bytes = field(repr=False)

    @classmethod
    def generate(cls) -> RepositoryKeys:
        return cls(primitives.random_bytes(SECRET_SIZE))

    def __post_init__(self) -> None:
        object.__setattr__(self, "_id_key", primitives.hkdf(self.secret, b"snowvault/blob-id/v1"))
        object.__setattr__(self, "_enc_key", primitives.hkdf(self.secret, b"snowvault/encrypt/v1"))
        seed = primitives.hkdf(self.secret, b"snowvault/chunker-seed/v1", 8)
        object.__setattr__(self, "_chunker_seed", int.from_bytes(seed, "little") & 0x7FFFFFFF)

    @property
    def chunker_seed(self) -> int:
        """Per-repository gear-table seed, so chunk boundaries do not fingerprint content."""
        return int(self._chunker_seed)  # type: ignore[attr-defined]

    @property
    def id_key(self) -> bytes:
        """The blob-id key alone, for an agent that must compute this repository's blob
        ids (docs/design/agents.md): it opens nothing, unlike the encryption key."""
        return bytes(self._id_key)  # type: ignore[attr-defined]

    def blob_id(self, data: bytes | memoryview) -> bytes:
        return primitives.keyed_hash(self._id_key, data)  # type: ignore[attr-defined]

    def sealer(self) -> primitives.Sealer:
        return primitives.Sealer(self._enc_key)  # type: ignore[attr-defined]
