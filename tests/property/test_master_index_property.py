"""The compact master index answers exactly as a dict of Locations (the first location
added for a blob id wins), whether filled pack by pack or from segment bodies."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snowvault.engine import index, packs
from snowvault.engine.crypto import RepositoryKeys

KEYS = RepositoryKeys(b"\x02" * 64)

ids = st.binary(min_size=32, max_size=32)
entry = st.tuples(
    st.sampled_from([0, 1]), st.sampled_from([b"\x00" * 32, b"\x01" * 32]) | ids,
    st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
)  # fmt: skip
pack_lists = st.lists(
    st.tuples(st.sampled_from(["aa" * 32, "bb" * 32, "cc" * 32]), st.lists(entry, max_size=8)),
    max_size=6,
)


def reference(groups: list[tuple[str, list[tuple[int, bytes, int, int, int]]]]) -> dict:
    out: dict[bytes, index.Location] = {}
    for pack_id, rows in groups:
        for kind, blob_id, offset, length, raw in rows:
            out.setdefault(blob_id, index.Location(pack_id, kind, offset, length, raw))
    return out


@settings(max_examples=60, derandomize=True)
@given(pack_lists)
def test_compact_index_matches_a_dict_of_locations(groups: list) -> None:
    by_pack = index.MasterIndex()
    by_body = index.MasterIndex()
    sealer = KEYS.sealer()
    for pack_id, rows in groups:
        by_pack.add_pack(pack_id, [packs.PackEntry(*r) for r in rows])
        segment = index.Segment({pack_id: [packs.PackEntry(*r) for r in rows]})
        by_body.add_body(index.SegmentBody.open(sealer, segment.encode(sealer)))
    want = reference(groups)
    for got in (by_pack, by_body):
        assert len(got) == len(want)
        assert dict(got.items()) == want
        assert sorted(got.blob_ids()) == sorted(want)
        for blob_id, loc in want.items():
            assert blob_id in got
            assert got.get(blob_id) == loc
            assert got.pack_of(blob_id) == (loc.pack_id, loc.offset)
    assert by_pack.get(b"\xff" * 31) is None and by_pack.pack_of(b"\xff" * 31) is None


def _body(n_packs: int, entries: int, extra: bytes = b"") -> bytes:
    head = struct.pack("<4sBI", b"SVIX", 1, 0) + struct.pack("<I", n_packs)
    packs_part = struct.pack("<32sI", b"\xaa" * 32, entries)
    packs_part += struct.pack("<B32sIII", 0, b"\x01" * 32, 0, 1, 1) * entries
    return head + packs_part + extra


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_body(1, 2)[:-3], "truncated"),
        (_body(2, 1), "truncated"),
        (_body(1, 1, b"\x00"), "trailing bytes"),
        (b"SVIX\x02" + b"\x00" * 8, "unknown index version"),
    ],
)
def test_a_damaged_segment_body_is_refused_as_before(body: bytes, message: str) -> None:
    sealer = KEYS.sealer()
    sealed = sealer.seal(body, index.INDEX_AAD)
    for decode in (index.SegmentBody.open, index.Segment.decode):
        with pytest.raises(index.IndexFormatError, match=message):
            decode(sealer, sealed)


def test_a_segment_sealed_for_something_else_fails_authentication() -> None:
    sealer = KEYS.sealer()
    with pytest.raises(index.IndexFormatError, match="authentication"):
        index.SegmentBody.open(sealer, sealer.seal(_body(1, 1), b"other"))
