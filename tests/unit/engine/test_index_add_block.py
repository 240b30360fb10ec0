"""The master index loads a segment's packs column by column (MasterIndex._add_block)
into exactly the rows the entry-by-entry path (add_rows) gives: the same first
location of each blob, pack numbers past one byte, every byte of the offsets and
lengths, and blobs repeated within a pack or across packs."""

from __future__ import annotations

import random

from snowvault.engine import index
from snowvault.engine.crypto import primitives
from snowvault.engine.packs import PackEntry


def _rows(m: index.MasterIndex) -> tuple[object, ...]:
    return (dict(m._rows), list(m._where), list(m._sizes), bytes(m._kinds), list(m._packs))


def _segments(rng: random.Random) -> list[index.SegmentBody]:
    sealer = primitives.Sealer(bytes(32))
    ids = [rng.randbytes(32) for _ in range(600)]
    out = []
    for _ in range(3):
        packs: dict[str, list[PackEntry]] = {}
        for _ in range(150):  # 450 packs: numbers past 255
            entries = [
                PackEntry(
                    rng.randrange(4),
                    rng.choice(ids) if rng.random() < 0.02 else rng.randbytes(32),
                    rng.randrange(2**32),
                    rng.randrange(2**32),
                    rng.randrange(2**32),
                )
                for _ in range(rng.randrange(0, 6))
            ]
            if entries and rng.random() < 0.05:
                entries.append(entries[0])  # the same blob twice in one pack
            packs[rng.randbytes(32).hex()] = entries
        segment = index.Segment(packs).encode(sealer)
        out.append(index.SegmentBody.open(sealer, segment))
    return out


def test_add_body_gives_the_rows_of_add_rows() -> None:
    rng = random.Random(15)
    bodies = _segments(rng)
    fast, slow = index.MasterIndex(), index.MasterIndex()
    for body in bodies:
        fast.add_body(body)
        for pack_id, rows in body.packs():
            slow.add_rows(pack_id, rows)
    assert len(fast._packs) > 256
    assert _rows(fast) == _rows(slow)
    for blob_id in list(slow._rows)[::7]:
        assert fast.get(blob_id) == slow.get(blob_id)


def test_a_pack_with_a_known_blob_keeps_the_first_location() -> None:
    entry = PackEntry(1, b"\x01" * 32, 10, 20, 30)
    body = index.SegmentBody.open(
        primitives.Sealer(bytes(32)),
        index.Segment(
            {"aa" * 32: [entry], "bb" * 32: [PackEntry(1, b"\x02" * 32, 5, 6, 7), entry]}
        ).encode(primitives.Sealer(bytes(32))),
    )
    m = index.MasterIndex()
    m.add_body(body)
    assert m.get(b"\x01" * 32) == index.Location("aa" * 32, 1, 10, 20, 30)
    assert m.get(b"\x02" * 32) == index.Location("bb" * 32, 1, 5, 6, 7)
    assert len(m) == 2
