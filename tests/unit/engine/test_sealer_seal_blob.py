"""Sealer.seal_blob and compression.encode: the bytes of seal_parts(compression.pack(...)),
without joining the method byte and the body (the repository format is unchanged)."""

from __future__ import annotations

import os
import random

import pytest

from snowvault.engine import compression
from snowvault.engine.crypto import primitives

KEY = bytes(range(32))
AAD = b"snowvault/blob|aad"
SIZES = [
    0,
    1,
    100,
    primitives.STREAM_BYTES - 1,
    primitives.STREAM_BYTES,
    1024 * 1024 + 3,
    primitives.SCRATCH_BYTES + 1,
]


def _fixed_nonce(monkeypatch: pytest.MonkeyPatch) -> None:
    nonce = bytes(range(100, 100 + primitives.NONCE_SIZE))
    real = os.urandom
    monkeypatch.setattr(os, "urandom", lambda n: nonce if n == primitives.NONCE_SIZE else real(n))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("method", [compression.RAW, compression.ZSTD])
def test_seal_blob_equals_seal_parts_of_the_joined_plaintext(
    monkeypatch: pytest.MonkeyPatch, size: int, method: int
) -> None:
    _fixed_nonce(monkeypatch)
    body = random.Random(size).randbytes(size)
    sealer = primitives.Sealer(KEY)
    want = sealer.seal_parts(bytes((method,)) + body, AAD)
    for view in (body, memoryview(body)):
        nonce, sealed = sealer.seal_blob(method, view, AAD)
        assert (nonce, bytes(sealed)) == want
    assert sealer.open(nonce + bytes(sealed), AAD) == bytes((method,)) + body


def test_seal_blob_reuses_its_buffer_only_up_to_the_limit() -> None:
    sealer = primitives.Sealer(KEY)
    rng = random.Random(1)
    first = rng.randbytes(primitives.STREAM_BYTES + 10)
    nonce, sealed = sealer.seal_blob(compression.RAW, first, AAD)
    kept = nonce + bytes(sealed)  # the view is valid only until the next seal_blob
    big = rng.randbytes(primitives.SCRATCH_BYTES + 1)
    nonce2, sealed2 = sealer.seal_blob(compression.RAW, big, AAD)
    assert sealer.open(nonce2 + bytes(sealed2), AAD) == b"\x00" + big
    assert len(sealer._scratch) <= primitives.SCRATCH_BYTES  # the large one had its own
    assert sealer.open(kept, AAD) == b"\x00" + first


@pytest.mark.parametrize(
    "data",
    [b"", b"x" * 63, b"a" * 100_000, random.Random(3).randbytes(300_000), bytes(200_000)],
)
def test_encode_is_pack_unjoined(data: bytes) -> None:
    method, body = compression.encode(data)
    assert bytes((method,)) + bytes(body) == compression.pack(data)
    assert compression.unpack(compression.pack(data)) == data
    if method == compression.RAW:
        assert body is data  # stored raw: the data itself, no copy
