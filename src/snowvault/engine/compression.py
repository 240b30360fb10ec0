"""Blob compression: zstd, stored raw when compression does not make it smaller.

The first byte of a blob's plaintext says how the rest is stored::

    0x00  raw
    0x01  zstd frame (content size in the frame header)

Compressor objects are per thread (zstandard contexts are not thread-safe); zstd
releases the GIL, so a thread pool compresses in parallel.
"""

from __future__ import annotations

import threading

import zstandard

RAW = 0
ZSTD = 1
DEFAULT_LEVEL = 1
"""Level of new repositories (a repository keeps the level in its config). Measured on the
benchmark sets (docs/benchmarks.md): level 1 compresses the mixed image 2.4x faster than
level 3 (689 vs 285 MB/s) to the same size (0.524 vs 0.525), small text files to a
smaller size (0.697 vs 0.710) and source trees 1.3x faster for 3% more (0.332 vs 0.322,
most of which deduplicates across versions anyway)."""

TUNED: dict[int, dict[str, int]] = {1: {"hash_log": 16, "min_match": 6}}
"""zstd parameters set over a level's own. Level 1 takes level 2's hash table (64 K
entries, not 16 K) and minimum match (6 bytes, not 7), keeping level 1's window and
strategy: on the media set's logs 50.90 -> 49.42 MiB (restic stores them in 49.46) for
0.43 -> 0.50 s, the full set's image 139.45 -> 139.01 MiB a 256 MiB for +10% of its
compression time, small files, documents and sources the same size at the same speed
(zstd shrinks the table for a small input; docs/benchmarks.md). zstd's own level 2 is
worse for documents (its small-input row has a 5-byte minimum match). The frames are
ordinary zstd frames: readers and existing repositories are unaffected."""

_local = threading.local()


def _compressor(level: int) -> zstandard.ZstdCompressor:
    cache: dict[int, zstandard.ZstdCompressor] | None = getattr(_local, "c", None)
    if cache is None:
        cache = _local.c = {}
    if level not in cache:
        tuned = TUNED.get(level)
        if tuned is None:
            cache[level] = zstandard.ZstdCompressor(level=level, write_content_size=True)
        else:  # the parameters write the content size by default, as the format wants
            params = zstandard.ZstdCompressionParameters.from_level(level, **tuned)
            cache[level] = zstandard.ZstdCompressor(compression_params=params)
    return cache[level]


def _decompressor() -> zstandard.ZstdDecompressor:
    d: zstandard.ZstdDecompressor | None = getattr(_local, "d", None)
    if d is None:
        d = _local.d = zstandard.ZstdDecompressor()
    return d


SAMPLE = 4 * 1024
STRIDE = 64 * 1024
"""A large blob (``TRIAL_FROM`` bytes or more) is trial-compressed in ``SAMPLE`` bytes at
the start of every ``STRIDE`` and at its end; only when none of them shrinks is it stored
raw, without spending zstd's time on all of it (random or already compressed data). So
any compressible run of ``STRIDE + SAMPLE`` bytes or more is found wherever it lies. Three
samples (start, middle, end) were not enough: a 5 MB chunk of a disk image, zeros and text
between random runs at those three places, was stored raw (4.8 MB more than compressed),
which made the media set's repository size swing by 0.8% with each repository's chunker
seed. The samples cost ~0.4 ms of each 8 MiB of random data, whole-blob zstd ~2.3 ms
(level 1, measured)."""
TRIAL_FROM = 2 * STRIDE


def pack(data: bytes | memoryview, level: int = DEFAULT_LEVEL) -> bytes:
    """Plaintext of a blob: a one-byte method then the (maybe compressed) data."""
    method, body = encode(data, level)
    return bytes((method,)) + body


def encode(data: bytes | memoryview, level: int = DEFAULT_LEVEL) -> tuple[int, bytes | memoryview]:
    """:func:`pack` as its method byte and the rest, not joined: a blob stored raw is
    ``data`` itself, not a copy (a sealer takes the two apart, ``Sealer.seal_blob``)."""
    if level > 0 and len(data) >= 64 and _worth_trying(data):
        compressed = _compressor(level).compress(data)
        if len(compressed) < len(data):
            return ZSTD, compressed
    return RAW, data


def _worth_trying(data: bytes | memoryview) -> bool:
    n = len(data)
    if n < TRIAL_FROM:
        return True
    view = memoryview(data)
    fast = _compressor(1)
    shrunk = SAMPLE * 0.97
    for start in (*range(0, n - SAMPLE, STRIDE), n - SAMPLE):
        if len(fast.compress(view[start : start + SAMPLE])) < shrunk:
            return True
    return False


def unpack(body: bytes) -> bytes:
    if not body:
        raise ValueError("empty blob body")
    method = body[0]
    if method == RAW:
        return body[1:]
    if method == ZSTD:
        return bytes(_decompressor().decompress(memoryview(body)[1:]))
    raise ValueError(f"unknown compression method {method}")
