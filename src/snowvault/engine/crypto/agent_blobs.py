"""Blobs in transit from an agent to the server, sealed under a per-job data key
(docs/design/agents.md). The agent seals ``method||body`` (the blob's stored plaintext,
compressed or raw) with AES-256-GCM under the job key; the associated data binds the
job, the kind and the blob id, so a blob cannot be replayed into another job or renamed.

    sealed = seal_blob(job_key, job_id, "data", blob_id, plaintext)
    plaintext = open_blob(job_key, job_id, "data", blob_id, sealed)  # AuthenticationFailed

:func:`blob_id` is the repository's id function given only its id key (an agent holds
that key, never the repository secret or encryption key).
"""

from __future__ import annotations

import base64
import hashlib

from snowvault.engine.crypto import primitives

_KINDS = {"data": b"\x00", "tree": b"\x01"}
JOB_KEY_SIZE = primitives.KEY_SIZE


def new_job_key() -> bytes:
    return primitives.random_bytes(JOB_KEY_SIZE)


def _aad(job_id: str, kind: str, blob_id: bytes) -> bytes:
    return b"snowvault/agent-blob/v1|" + job_id.encode() + b"|" + _KINDS[kind] + blob_id


def seal_blob(job_key: bytes, job_id: str, kind: str, blob_id: bytes, plaintext: bytes) -> bytes:
    return primitives.seal(job_key, plaintext, _aad(job_id, kind, blob_id))


def open_blob(job_key: bytes, job_id: str, kind: str, blob_id: bytes, sealed: bytes) -> bytes:
    """The plaintext; :class:`primitives.AuthenticationFailed` when it was not sealed for
    this job, kind and id under this key."""
    return primitives.open_sealed(job_key, sealed, _aad(job_id, kind, blob_id))


def blob_id(id_key: bytes, data: bytes | memoryview) -> bytes:
    return primitives.keyed_hash(id_key, data)


def content_md5(data: bytes | bytearray) -> str:
    """The base64 MD5 of ``data``: the Content-MD5 a presigned upload is bound to, and
    what the store answers as the object's ETag (an integrity check, not a secret)."""
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


class PackDigest:
    """A pack's SHA-256 (its id) and MD5 (its upload's Content-MD5), computed as the
    pack grows, for a pack spooled to a file rather than held whole.

        digest = PackDigest(); digest.update(part) ...
        digest.pack_id(), digest.content_md5()   # hex SHA-256, base64 MD5
    """

    def __init__(self) -> None:
        self._sha256 = hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._sha256.update(data)
        self._md5.update(data)

    def pack_id(self) -> str:
        return self._sha256.hexdigest()

    def content_md5(self) -> str:
        return base64.b64encode(self._md5.digest()).decode()
