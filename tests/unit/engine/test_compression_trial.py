"""compression.encode's trial: a large blob is stored raw only when no sample of it
shrinks, and every compressible run of STRIDE + SAMPLE bytes holds a whole sample."""

from __future__ import annotations

import random

import pytest
import zstandard

from snowvault.engine import compression


def _random(rng: random.Random, size: int) -> bytes:
    return rng.randbytes(size)


def test_random_data_is_stored_raw_and_not_copied() -> None:
    data = _random(random.Random(1), 5_000_000)
    method, body = compression.encode(data)
    assert method == compression.RAW
    assert body is data


def test_zeros_between_random_runs_at_start_middle_and_end_are_compressed() -> None:
    """The chunk that three samples (start, middle, end) stored raw: random where those
    samples fall, zeros and text between them."""
    rng = random.Random(2)
    size = 5_093_942
    parts = bytearray(size)  # zeros
    for start in (0, size // 2 - 150_000, size - 300_000):
        parts[start : start + 300_000] = _random(rng, 300_000)
    data = bytes(parts)
    method, body = compression.encode(data)
    assert method == compression.ZSTD
    assert len(body) < size // 4
    assert compression.unpack(compression.pack(data)) == data


@pytest.mark.parametrize("seed", range(8))
def test_a_compressible_run_of_stride_plus_sample_is_found_wherever_it_lies(seed: int) -> None:
    rng = random.Random(seed)
    size = rng.randrange(compression.TRIAL_FROM, 4 * 1024 * 1024)
    run = compression.STRIDE + compression.SAMPLE
    at = rng.randrange(0, size - run + 1)
    data = bytearray(_random(rng, size))
    data[at : at + run] = bytes(run)
    method, body = compression.encode(bytes(data))
    assert method == compression.ZSTD, (size, at)
    assert len(body) < size - compression.STRIDE


def test_small_blobs_are_always_tried() -> None:
    data = bytes(compression.TRIAL_FROM - 1)
    assert compression.encode(data)[0] == compression.ZSTD


@pytest.mark.parametrize("level", [1, 3])
def test_a_zstd_blob_names_its_content_size_at_tuned_and_plain_levels(level: int) -> None:
    """The format wants the content size in the frame header; level 1 is built from
    explicit parameters (compression.TUNED), which must keep writing it."""
    data = b"a record of a log line, seven fields, " * 4000
    packed = compression.pack(data, level)
    assert packed[0] == compression.ZSTD
    assert zstandard.frame_content_size(packed[1:]) == len(data)
    assert compression.unpack(packed) == data
