"""Hypothesis: the tree codec (``engine.tree``) gives the same bytes, the same nodes and
the same errors as the straightforward codec it replaced (kept below as the reference:
the format is fixed, so any faster code must agree with it on every input, damaged
trees included)."""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import random
import sys
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from snowvault.engine import errors, tree
from snowvault.engine.tree import Node

# ------------------------------------------------------------------ reference codec


def _ref_put_bytes(doc: dict[str, Any], key: str, raw: bytes) -> None:
    try:
        doc[key] = raw.decode("utf-8")
    except UnicodeDecodeError:
        doc[key + "_b64"] = base64.b64encode(raw).decode("ascii")


def _ref_get_bytes(doc: dict[str, Any], key: str) -> bytes | None:
    if key in doc:
        return str(doc[key]).encode("utf-8")
    if key + "_b64" in doc:
        return base64.b64decode(doc[key + "_b64"], validate=True)
    return None


def _ref_pair(raw: bytes) -> str | list[str]:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return ["b64", base64.b64encode(raw).decode("ascii")]


def _ref_from_pair(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    return base64.b64decode(value[1], validate=True)


def ref_node_to_dict(node: Node) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": node.type}
    _ref_put_bytes(doc, "name", node.name)
    for key, default in (
        ("mode", 0),
        ("uid", 0),
        ("gid", 0),
        ("mtime_ns", 0),
        ("ctime_ns", 0),
        ("inode", 0),
        ("device", 0),
        ("size", 0),
        ("rdev", 0),
        ("nlink", 1),
    ):
        if getattr(node, key) != default:
            doc[key] = getattr(node, key)
    for key in ("user", "group"):
        if getattr(node, key) is not None:
            doc[key] = getattr(node, key)
    if node.target is not None:
        _ref_put_bytes(doc, "target", node.target)
    if node.xattrs:
        doc["xattrs"] = [
            [_ref_pair(k), base64.b64encode(v).decode("ascii")] for k, v in node.xattrs
        ]
    if node.content:
        doc["content"] = node.content
    if node.subtree is not None:
        doc["subtree"] = node.subtree
    if node.extra:
        doc["extra"] = node.extra
    return doc


def _ref_chunk(c: Any) -> tuple[str | None, int]:
    blob, length = c
    if (blob is not None and not isinstance(blob, str)) or not isinstance(length, int):
        raise ValueError(f"bad content entry {c!r:.80}")
    return (blob, length)


def ref_node_from_dict(doc: dict[str, Any]) -> Node:
    get = doc.get
    name = _ref_get_bytes(doc, "name")
    node_type = get("type", "")
    node_type = node_type if node_type in tree.NODE_TYPES else None
    if name is None or node_type is None:
        raise ValueError(f"bad node {doc!r:.200}")
    user, group = get("user"), get("group")
    content, xattrs, extra = get("content"), get("xattrs"), get("extra")
    return Node(
        name=name,
        type=node_type,
        mode=int(get("mode", 0)),
        uid=int(get("uid", 0)),
        gid=int(get("gid", 0)),
        user=sys.intern(user) if type(user) is str else user,
        group=sys.intern(group) if type(group) is str else group,
        mtime_ns=int(get("mtime_ns", 0)),
        ctime_ns=int(get("ctime_ns", 0)),
        inode=int(get("inode", 0)),
        device=int(get("device", 0)),
        size=int(get("size", 0)),
        nlink=int(get("nlink", 1)),
        target=_ref_get_bytes(doc, "target") if ("target" in doc or "target_b64" in doc) else None,
        rdev=int(get("rdev", 0)),
        xattrs=tuple((_ref_from_pair(k), base64.b64decode(v, validate=True)) for k, v in xattrs)
        if xattrs
        else (),
        content=tuple(_ref_chunk(c) for c in content) if content else (),
        subtree=get("subtree"),
        extra=dict(extra) if extra else {},
    )


def ref_encode_tree(nodes: list[Node]) -> bytes:
    ordered = sorted(nodes, key=lambda n: n.name)
    for before, after in itertools.pairwise(ordered):
        if before.name == after.name:
            raise ValueError(f"duplicate name in tree: {before.text_name}")
    doc = {"nodes": [ref_node_to_dict(n) for n in ordered], "version": 1}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def ref_decode_tree(data: bytes, name: str = "tree") -> list[Node]:
    try:
        doc = json.loads(data)
        if doc.get("version") != 1:
            raise ValueError(f"unsupported tree version {doc.get('version')!r}")
        return [ref_node_from_dict(n) for n in doc["nodes"]]
    except (ValueError, KeyError, TypeError, AttributeError, IndexError, binascii.Error) as exc:
        raise errors.IntegrityError(name=name, detail=f"malformed tree: {exc}") from exc


# ------------------------------------------------------------------ strategies

small_bytes = st.binary(min_size=1, max_size=6) | st.text(min_size=1, max_size=6).map(
    lambda s: s.encode("utf-8", "surrogatepass")
)
ints = st.integers(0, 2**64) | st.sampled_from([0, 1, 2])
hexid = st.binary(min_size=32, max_size=32).map(bytes.hex)
nodes = st.builds(
    Node,
    name=small_bytes,
    type=st.sampled_from(sorted(tree.NODE_TYPES)),
    mode=ints,
    uid=ints,
    gid=ints,
    user=st.none() | st.text(max_size=5),
    group=st.none() | st.text(max_size=5),
    mtime_ns=ints,
    ctime_ns=ints,
    inode=ints,
    device=ints,
    size=ints,
    nlink=ints,
    target=st.none() | st.binary(max_size=6),
    rdev=ints,
    xattrs=st.lists(st.tuples(small_bytes, st.binary(max_size=6)), max_size=2).map(tuple),
    content=st.lists(st.tuples(st.none() | hexid, ints), max_size=3).map(tuple),
    subtree=st.none() | hexid,
    extra=st.dictionaries(st.sampled_from(["z", "fingerprint", "a"]), st.integers() | st.text()),
)
json_values = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=4)
    | st.lists(st.none() | st.integers() | st.text(max_size=3), max_size=3)
)
FIELDS = [
    "name",
    "name_b64",
    "type",
    "mode",
    "uid",
    "nlink",
    "rdev",
    "size",
    "user",
    "target",
    "target_b64",
    "xattrs",
    "content",
    "subtree",
    "extra",
]


def _outcome(fn: Any, *args: Any) -> Any:
    try:
        value = fn(*args)
    except Exception as exc:  # the point is to compare any error
        return ("error", type(exc), str(exc))
    if isinstance(value, list):
        return ("ok", value, [(n.extra, n.user, n.group) for n in value])
    return ("ok", value)


# ------------------------------------------------------------------ properties


@settings(max_examples=200, derandomize=True)
@given(st.lists(nodes, max_size=8))
@example([Node(name=b"b", type="file"), Node(name=b"\xff", type="dir"), Node(name=b"b", type="x")])
def test_encode_and_decode_agree_with_the_reference(items: list[Node]) -> None:
    want = _outcome(ref_encode_tree, items)
    assert _outcome(tree.encode_tree, items) == want
    pairs = [(n.name, tree.node_to_dict(n)) for n in items]
    random.Random(len(items)).shuffle(pairs)
    assert _outcome(tree.encode_dicts, pairs) == want
    if want[0] == "ok":
        blob = want[1]
        assert _outcome(tree.decode_tree, blob) == _outcome(ref_decode_tree, blob)
        assert tree.decode_tree(blob) == sorted(items, key=lambda n: n.name)


@settings(max_examples=400, derandomize=True)
@given(nodes, st.lists(st.tuples(st.sampled_from(FIELDS), json_values | st.just(...)), max_size=3))
def test_damaged_nodes_decode_or_fail_as_the_reference_does(
    node: Node, edits: list[tuple[str, Any]]
) -> None:
    doc = ref_node_to_dict(node)
    for key, value in edits:
        if value is ...:
            doc.pop(key, None)
        else:
            doc[key] = value
    blob = json.dumps({"nodes": [doc], "version": 1}).encode()
    assert _outcome(tree.decode_tree, blob) == _outcome(ref_decode_tree, blob)
    assert _outcome(tree.node_from_dict, doc) == _outcome(ref_node_from_dict, doc)


# orjson writes a tree without ``extra``; the standard library's encoder is the reference
# (tree.reference_dumps). Any int or str a node can hold, out-of-range and unencodable ones
# included, gives the reference's bytes or the reference's error.
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=6)
wide_ints = st.integers(-(2**66), 2**66) | st.sampled_from([2**63 - 1, -(2**63), 2**64 - 1, 2**64])
plain_values = st.recursive(
    wide_ints | any_text, lambda inner: st.lists(inner, max_size=3), max_leaves=6
)


@settings(max_examples=400, derandomize=True)
@given(
    st.lists(st.dictionaries(any_text.filter(lambda k: k != "extra"), plain_values, max_size=4)),
    st.booleans(),
)
@example([{"name": 'a\x00\x1f\x7f\u2028\ud800"\\', "size": 2**64}], False)
@example([{"mtime_ns": -(2**63) - 1, "name": "\U0010ffff\ufeff"}], True)
def test_the_fast_encoder_writes_the_reference_bytes(
    docs: list[dict[str, Any]], sort_keys: bool
) -> None:
    reference = {"nodes": docs, "version": tree.TREE_VERSION}
    assert _outcome(tree._dumps, docs, sort_keys) == _outcome(
        tree.reference_dumps, reference, sort_keys
    )
