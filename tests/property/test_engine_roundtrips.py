"""Hypothesis round trips of the engine's building blocks: chunker, compression, crypto,
packs and index segments."""

from __future__ import annotations

import io
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from snowvault.engine import compression, index, packs
from snowvault.engine.chunker import Chunker, ChunkerParams
from snowvault.engine.crypto import RepositoryKeys, primitives

SMALL = ChunkerParams(min_size=64, avg_size=256, max_size=1024, seed=7)
KEYS = RepositoryKeys(b"\x01" * 64)


@settings(max_examples=60, derandomize=True)
@given(st.binary(max_size=20_000))
def test_chunks_reassemble_and_respect_bounds(data: bytes) -> None:
    chunker = Chunker(SMALL)
    parts = [bytes(c) for c in chunker.chunks_of_bytes(data)]
    assert b"".join(parts) == data
    assert all(len(p) <= SMALL.max_size for p in parts)
    assert all(len(p) >= SMALL.min_size for p in parts[:-1])
    streamed = [bytes(c) for c in chunker.chunks(io.BytesIO(data))]
    assert streamed == parts


@settings(max_examples=30, derandomize=True)
@given(st.integers(0, 2**32), st.binary(min_size=1, max_size=200))
def test_chunk_boundaries_resynchronise_after_an_insert(seed: int, insert: bytes) -> None:
    data = random.Random(seed).randbytes(20_000)
    chunker = Chunker(SMALL)
    before = {bytes(c) for c in chunker.chunks_of_bytes(data)}
    after = {bytes(c) for c in chunker.chunks_of_bytes(insert + data)}
    assert len(before & after) >= len(before) // 2  # content-defined: the tail still dedups


@settings(max_examples=80, derandomize=True)
@given(st.binary(max_size=50_000), st.integers(min_value=0, max_value=9))
def test_compression_round_trip(data: bytes, level: int) -> None:
    body = compression.pack(data, level)
    assert compression.unpack(body) == data
    assert len(body) <= len(data) + 1


@settings(max_examples=50, derandomize=True)
@given(st.binary(max_size=5000), st.binary(max_size=64))
def test_seal_open_round_trip_and_tamper(data: bytes, aad: bytes) -> None:
    sealer = KEYS.sealer()
    sealed = sealer.seal(data, aad)
    assert sealer.open(sealed, aad) == data
    tampered = bytearray(sealed)
    tampered[len(tampered) // 2] ^= 1
    try:
        sealer.open(bytes(tampered), aad)
    except primitives.AuthenticationFailed:
        pass
    else:
        raise AssertionError("tampered ciphertext opened")


entries = st.lists(
    st.tuples(st.sampled_from([0, 1]), st.binary(min_size=32, max_size=32), st.integers(1, 10**6)),
    max_size=40,
)


@settings(max_examples=40, derandomize=True)
@given(entries)
def test_pack_header_and_index_round_trip(items: list[tuple[int, bytes, int]]) -> None:
    sealer = KEYS.sealer()
    offset, listed = 0, []
    for kind, blob_id, length in items:
        listed.append(packs.PackEntry(kind, blob_id, offset, length, length * 2))
        offset += length
    tail = packs.encode_header(sealer, listed)
    hlen = packs.header_length(tail[-packs.TAIL_SIZE :])
    assert packs.decode_header(sealer, tail[:hlen]) == listed
    segment = index.Segment({"ab" * 32: listed}, supersedes=["cd" * 32])
    decoded = index.Segment.decode(sealer, segment.encode(sealer))
    assert decoded.packs == segment.packs and decoded.supersedes == segment.supersedes
