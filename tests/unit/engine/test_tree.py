"""Tree blob encoding: canonical, round-trips raw bytes, rejects damage."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from snowvault.engine import errors, snapshots
from snowvault.engine.tree import Node, decode_tree, encode_tree

FULL = Node(
    name=b"caf\xe9",
    type="symlink",
    mode=0o4755,
    uid=1000,
    gid=100,
    user="alice",
    group="users",
    mtime_ns=1_700_000_000_123_456_789,
    ctime_ns=1_700_000_001_000_000_000,
    inode=42,
    device=2049,
    size=0,
    nlink=2,
    target=b"../t\xffarget",
    rdev=0,
    xattrs=((b"user.a", b"\x00\x01"), (b"user.\xfe", b"v")),
)


def test_every_field_round_trips_including_non_utf8_bytes() -> None:
    f = Node(name=b"f", type="file", size=10, content=(("ab" * 32, 4), (None, 6)))
    d = Node(name="ünï".encode(), type="dir", subtree="cd" * 32)
    assert decode_tree(encode_tree([FULL, f, d])) == sorted([FULL, f, d], key=lambda n: n.name)


def test_encoding_is_canonical_whatever_the_input_order() -> None:
    nodes = [Node(name=bytes([c]), type="file") for c in b"zyxab"]
    assert encode_tree(nodes) == encode_tree(sorted(nodes, key=lambda n: n.name))
    assert encode_tree(nodes).startswith(b'{"nodes":[{"name":"a"')


def test_non_utf8_names_use_a_base64_field() -> None:
    assert b'"name_b64":"Y2Fm6Q=="' in encode_tree([FULL])


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        encode_tree([Node(name=b"a", type="file"), Node(name=b"a", type="dir")])


@pytest.mark.parametrize(
    "blob", [b"not json", b'{"version":9,"nodes":[]}', b'{"version":1,"nodes":[{"type":"x"}]}']
)
def test_damaged_trees_raise_integrity_errors(blob: bytes) -> None:
    with pytest.raises(errors.IntegrityError, match="tree t1"):
        decode_tree(blob, "tree t1")


def test_manifest_round_trips_and_rejects_garbage() -> None:
    m = snapshots.Manifest(
        time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        hostname="h",
        paths=["/a"],
        kind="directory",
        tree="ab" * 32,
        parent="cd" * 32,
        tags={"t": "v"},
        partial=True,
        errors=[snapshots.ManifestError("/a/x", "Permission denied")],
        summary=snapshots.Summary(files_new=3, bytes_read=10),
        metadata={"pg": {"version": 16}},
    )
    doc = m.to_dict()
    assert doc["time"] == "2026-01-02T03:04:05Z"
    assert snapshots.Manifest.from_dict(doc) == m
    with pytest.raises(errors.IntegrityError, match="rp1"):
        snapshots.Manifest.from_dict({"version": 1}, "rp1")
