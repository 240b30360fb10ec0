"""The repository ``config`` object: format version, id, and sealed parameters.

``config`` is JSON::

    {"format": "snowvault-repository", "version": 1, "id": "<64 hex>",
     "sealed": "<b64 of AEAD(enc_key, params-json, aad=b'snowvault/config/v1|' + id)>"}

The id is readable before unlocking (key slots bind to it); the parameters are
authenticated with the repository key, so nobody can swap chunker or pack settings.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from snowvault.engine.chunker import ChunkerParams
from snowvault.engine.crypto import primitives

FORMAT = "snowvault-repository"
VERSION = 1
DEFAULT_PACK_SIZE = 16 * 1024 * 1024


@dataclass(frozen=True)
class RepoConfig:
    id: str
    chunker: ChunkerParams
    pack_size: int = DEFAULT_PACK_SIZE
    compression_level: int = 3

    def params(self) -> dict[str, Any]:
        return {
            "chunker": self.chunker.to_dict(),
            "pack_size": self.pack_size,
            "compression": {"algorithm": "zstd", "level": self.compression_level},
            "cipher": "aes-256-gcm",
            "blob_id": "blake3-keyed",
        }

    def encode(self, sealer: primitives.Sealer) -> bytes:
        sealed = sealer.seal(json.dumps(self.params(), sort_keys=True).encode(), aad(self.id))
        doc = {
            "format": FORMAT,
            "version": VERSION,
            "id": self.id,
            "sealed": base64.b64encode(sealed).decode(),
        }
        return json.dumps(doc, sort_keys=True, indent=1).encode()


def aad(repo_id: str) -> bytes:
    return f"snowvault/config/v1|{repo_id}".encode()


def read_header(data: bytes) -> dict[str, Any]:
    """The unauthenticated outer document: enough to find the id and version."""
    doc = json.loads(data)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError("not a snowvault repository config")
    if doc.get("version") != VERSION:
        raise ValueError(f"unsupported repository format version {doc.get('version')}")
    return doc


def decode(doc: dict[str, Any], sealer: primitives.Sealer) -> RepoConfig:
    repo_id = str(doc["id"])
    params = json.loads(sealer.open(base64.b64decode(doc["sealed"]), aad(repo_id)))
    return RepoConfig(
        id=repo_id,
        chunker=ChunkerParams.from_dict(params["chunker"]),
        pack_size=int(params["pack_size"]),
        compression_level=int(params["compression"]["level"]),
    )
