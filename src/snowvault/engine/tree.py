"""Tree blobs: the canonical encoding of one directory's entries.

A directory is stored as a blob of kind ``"tree"``: compact JSON with sorted keys whose
``nodes`` are sorted by raw name bytes, so the same directory always encodes to the same
bytes and an unchanged subtree deduplicates to the same blob id. Names, symlink targets
and xattr names are raw bytes: stored as ``name`` (UTF-8 text) when they decode, else
``name_b64``. File content is a list of ``[blob_id_hex, length]`` pairs; a hole (a run
of zeros not stored) is ``[null, length]``. Fields at their default are left out.

    >>> n = Node(name=b"a", type="file", size=3, content=(("ab" * 32, 3),))
    >>> decode_tree(encode_tree([n])) == [n]
    True

Depends on nothing but the standard library (and engine.errors for damaged trees).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import operator
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from snowvault.engine import errors

TREE_VERSION = 1

NodeType = Literal["file", "dir", "symlink", "fifo", "chardev", "blockdev", "socket"]
NODE_TYPES: frozenset[str] = frozenset(
    ("file", "dir", "symlink", "fifo", "chardev", "blockdev", "socket")
)
_TYPE_OF = {t: t for t in NODE_TYPES}
"""Each type's one string: a decoded tree's nodes share it instead of holding their own
(JSON makes a new string for every value; a restore plan holds every node)."""

Chunk = tuple[str | None, int]
"""One piece of a file: (data blob id hex, plaintext length); id None is a hole."""


@dataclass(slots=True)
class Node:
    """One directory entry with everything needed to restore it and to detect change.

    Not frozen only so the archiver can fill ``content``/``subtree`` in place when its
    uploads finish (``dataclasses.replace`` per file is measurable); treat nodes read
    from a repository as immutable.

    ``inode``/``device``/``ctime_ns`` serve incremental change detection; ``device`` +
    ``inode`` of a file with ``nlink > 1`` is also its hard-link identity.

    ``node_from_dict`` passes the fields by position (keywords cost it measurably): a
    new field goes at the end, and ``node_from_dict``/``node_to_dict`` learn it.
    """

    name: bytes
    type: str
    mode: int = 0
    uid: int = 0
    gid: int = 0
    user: str | None = None
    group: str | None = None
    mtime_ns: int = 0
    ctime_ns: int = 0
    inode: int = 0
    device: int = 0
    size: int = 0
    nlink: int = 1
    target: bytes | None = None
    rdev: int = 0
    xattrs: tuple[tuple[bytes, bytes], ...] = ()
    content: tuple[Chunk, ...] = ()
    subtree: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def link_key(self) -> tuple[int, int] | None:
        """Hard-link identity, or None when this is not a multiply-linked file."""
        if self.type == "file" and self.nlink > 1:
            return (self.device, self.inode)
        return None

    @property
    def text_name(self) -> str:
        """The name for display (undecodable bytes shown as backslash escapes)."""
        return self.name.decode("utf-8", "backslashreplace")


# ------------------------------------------------------------------ raw bytes <-> JSON


def _put_bytes(doc: dict[str, Any], key: str, raw: bytes) -> None:
    try:
        doc[key] = raw.decode("utf-8")
    except UnicodeDecodeError:
        doc[key + "_b64"] = base64.b64encode(raw).decode("ascii")


def _get_bytes(doc: dict[str, Any], key: str) -> bytes | None:
    if key in doc:
        return str(doc[key]).encode("utf-8")
    if key + "_b64" in doc:
        return base64.b64decode(doc[key + "_b64"], validate=True)
    return None


def _bytes_pair(raw: bytes) -> str | list[str]:
    """A bytes string as text, or as ``["b64", ...]`` when it is not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return ["b64", base64.b64encode(raw).decode("ascii")]


def _from_pair(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    return base64.b64decode(value[1], validate=True)


# ------------------------------------------------------------------ node <-> dict


def node_to_dict(node: Node) -> dict[str, Any]:
    """A node as its JSON object: fields at their default left out, keys inserted in
    sorted order (so ``json.dumps`` gives the canonical bytes without ``sort_keys``
    unless ``extra``, a free-form object, is present)."""
    # spelled out rather than looped: this runs once per backed-up entry
    doc: dict[str, Any] = {}
    if node.content:
        doc["content"] = node.content
    if node.ctime_ns:
        doc["ctime_ns"] = node.ctime_ns
    if node.device:
        doc["device"] = node.device
    if node.extra:
        doc["extra"] = node.extra
    if node.gid:
        doc["gid"] = node.gid
    if node.group is not None:
        doc["group"] = node.group
    if node.inode:
        doc["inode"] = node.inode
    if node.mode:
        doc["mode"] = node.mode
    if node.mtime_ns:
        doc["mtime_ns"] = node.mtime_ns
    try:
        doc["name"] = node.name.decode("utf-8")
    except UnicodeDecodeError:
        doc["name_b64"] = base64.b64encode(node.name).decode("ascii")
    if node.nlink != 1:
        doc["nlink"] = node.nlink
    if node.rdev:
        doc["rdev"] = node.rdev
    if node.size:
        doc["size"] = node.size
    if node.subtree is not None:
        doc["subtree"] = node.subtree
    if node.target is not None:
        _put_bytes(doc, "target", node.target)
    doc["type"] = node.type
    if node.uid:
        doc["uid"] = node.uid
    if node.user is not None:
        doc["user"] = node.user
    if node.xattrs:
        doc["xattrs"] = [
            [_bytes_pair(k), base64.b64encode(v).decode("ascii")] for k, v in node.xattrs
        ]
    return doc


def node_from_dict(doc: dict[str, Any]) -> Node:
    """A node from its JSON object; a malformed one raises ValueError, TypeError,
    KeyError, IndexError, AttributeError or binascii.Error (``decode_tree`` turns them
    into IntegrityError).

    Runs once per entry of every tree a restore or an incremental backup reads, so the
    common case (every integer field an int) is spelled out with positional arguments;
    anything else takes :func:`_node_from_dict_any`, which converts and fails exactly
    as this function always has."""
    get = doc.get
    mode = get("mode", 0)
    uid = get("uid", 0)
    gid = get("gid", 0)
    mtime_ns = get("mtime_ns", 0)
    ctime_ns = get("ctime_ns", 0)
    inode = get("inode", 0)
    device = get("device", 0)
    size = get("size", 0)
    nlink = get("nlink", 1)
    rdev = get("rdev", 0)
    name = get("name")
    if (
        not (
            mode.__class__
            is uid.__class__
            is gid.__class__
            is mtime_ns.__class__
            is ctime_ns.__class__
            is inode.__class__
            is device.__class__
            is size.__class__
            is nlink.__class__
            is rdev.__class__
            is int
        )
        or name.__class__ is not str
    ):
        return _node_from_dict_any(doc)
    name = name.encode("utf-8")
    node_type = _TYPE_OF.get(get("type", ""))
    if node_type is None:
        raise ValueError(f"bad node {doc!r:.200}")
    user = get("user")
    group = get("group")
    xattrs = get("xattrs")
    content = get("content")
    extra = get("extra")
    return Node(
        name,
        node_type,
        mode,
        uid,
        gid,
        _intern(user) if user.__class__ is str else user,  # a few names, many nodes
        _intern(group) if group.__class__ is str else group,
        mtime_ns,
        ctime_ns,
        inode,
        device,
        size,
        nlink,
        _get_bytes(doc, "target") if ("target" in doc or "target_b64" in doc) else None,
        rdev,
        _xattrs(xattrs) if xattrs else (),
        _chunks(content) if content else (),
        get("subtree"),
        dict(extra) if extra else {},
    )


_intern = sys.intern


def _node_from_dict_any(doc: dict[str, Any]) -> Node:
    """``node_from_dict`` for any object: integer fields through ``int()`` (a float, a
    bool or a numeric string is converted, as it always was), a name that is not text
    through ``name_b64`` or ``str()``. Field order, and so which error a node with
    several faults raises, is the original one."""
    get = doc.get
    name = _get_bytes(doc, "name")
    node_type = _TYPE_OF.get(get("type", ""))
    if name is None or node_type is None:
        raise ValueError(f"bad node {doc!r:.200}")
    user, group = get("user"), get("group")
    content = get("content")
    xattrs = get("xattrs")
    extra = get("extra")
    return Node(
        name=name,
        type=node_type,
        mode=int(get("mode", 0)),
        uid=int(get("uid", 0)),
        gid=int(get("gid", 0)),
        user=_intern(user) if type(user) is str else user,
        group=_intern(group) if type(group) is str else group,
        mtime_ns=int(get("mtime_ns", 0)),
        ctime_ns=int(get("ctime_ns", 0)),
        inode=int(get("inode", 0)),
        device=int(get("device", 0)),
        size=int(get("size", 0)),
        nlink=int(get("nlink", 1)),
        target=_get_bytes(doc, "target") if ("target" in doc or "target_b64" in doc) else None,
        rdev=int(get("rdev", 0)),
        xattrs=_xattrs(xattrs) if xattrs else (),
        content=_chunks(content) if content else (),
        subtree=get("subtree"),
        extra=dict(extra) if extra else {},
    )


def _xattrs(pairs: Iterable[Any]) -> tuple[tuple[bytes, bytes], ...]:
    return tuple([(_from_pair(k), base64.b64decode(v, validate=True)) for k, v in pairs])


def _chunks(content: Iterable[Any]) -> tuple[Chunk, ...]:
    out: list[Chunk] = []
    for c in content:
        blob, length = c
        if (blob is not None and not isinstance(blob, str)) or not isinstance(length, int):
            raise ValueError(f"bad content entry {c!r:.80}")
        out.append((blob, length))
    return tuple(out)


# ------------------------------------------------------------------ tree <-> bytes

_by_name = operator.attrgetter("name")


def encode_tree(nodes: Iterable[Node]) -> bytes:
    """The canonical bytes of a directory: nodes sorted by raw name, unique names."""
    ordered = sorted(nodes, key=_by_name)
    _check_unique([n.name for n in ordered])
    docs = [node_to_dict(n) for n in ordered]
    # node_to_dict inserts keys in sorted order; only a free-form ``extra`` needs sorting
    return _dumps(docs, sort_keys=False)


def encode_dicts(docs: Iterable[tuple[bytes, dict[str, Any]]]) -> bytes:
    """The canonical bytes of a directory given as (raw name, node JSON object) pairs:
    what ``encode_tree`` gives for the nodes those objects decode to, provided each
    object is canonical (exactly what ``node_to_dict`` writes for its node; the caller
    checks that). Keys are sorted here, so an object's key order does not matter.

        encode_dicts([(n.name, node_to_dict(n)) for n in nodes]) == encode_tree(nodes)
    """
    ordered = sorted(docs, key=_first)
    _check_unique([name for name, _ in ordered])
    return _dumps([d for _, d in ordered], sort_keys=True)


_first = operator.itemgetter(0)


def _check_unique(names: list[bytes]) -> None:
    """Refuse a sorted list of names with one twice (naming the first such name)."""
    if len(set(names)) == len(names):
        return
    for before, after in itertools.pairwise(names):
        if before == after:
            text = before.decode("utf-8", "backslashreplace")
            raise ValueError(f"duplicate name in tree: {text}")


def _dumps(docs: list[dict[str, Any]], sort_keys: bool) -> bytes:
    """``sort_keys``: the objects' keys may be out of order (a free-form ``extra`` is
    always sorted)."""
    doc = {"nodes": docs, "version": TREE_VERSION}  # keys in sorted order
    if any("extra" in d for d in docs):
        return reference_dumps(doc, True)
    # Without ``extra`` a node holds only str, int, lists and dicts, which orjson writes
    # byte for byte as the reference does (compact, UTF-8, the same escapes: tested by
    # tests/property/test_tree_json.py), several times faster: the trees' JSON was 14% of
    # the full set's initial backup while the GIL was held. An int outside 64 bits (a
    # time in ns after 2554 or before 1677) or a lone surrogate makes orjson refuse: the
    # reference then.
    try:
        return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS if sort_keys else 0)
    except orjson.JSONEncodeError:
        return reference_dumps(doc, sort_keys)


def reference_dumps(doc: dict[str, Any], sort_keys: bool) -> bytes:
    """The canonical bytes by the standard library: the reference encoding."""
    return json.dumps(doc, sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False).encode()


def decode_tree(data: bytes, name: str = "tree") -> list[Node]:
    """Parse a tree blob; a malformed one raises IntegrityError naming ``name``."""
    try:
        doc = json.loads(data)
        if doc.get("version") != TREE_VERSION:
            raise ValueError(f"unsupported tree version {doc.get('version')!r}")
        return [node_from_dict(n) for n in doc["nodes"]]
    except (ValueError, KeyError, TypeError, AttributeError, IndexError, binascii.Error) as exc:
        raise errors.IntegrityError(name=name, detail=f"malformed tree: {exc}") from exc


def content_size(content: Iterable[Chunk]) -> int:
    return sum(length for _, length in content)


NOT_NAMES = frozenset((b"", b".", b".."))
"""Names that are not one path component (with any name holding ``/`` or NUL)."""


def check_names(nodes: Iterable[Node], name: str = "tree") -> None:
    """Refuse, as a damaged tree (IntegrityError naming ``name``), a directory with an
    entry name that is not one path component (empty, ``.``, ``..``, a ``/`` or a NUL
    in it) or the same name twice.

    Abuse case: a tree is written by whoever made the backup, an agent's host too, and
    ``decode_tree`` takes any bytes as a name. Joined to a restore target or shown as a
    path, ``..`` or ``/etc/x`` would reach or name a place outside the point, and a name
    twice makes two entries one path. Every reader that turns names into paths (restore,
    browse, a tree written by an agent) calls this before using a name.

        nodes = decode_tree(raw, label)
        check_names(nodes, label)  # IntegrityError: entry b'..' is not a file name
    """
    seen: set[bytes] = set()
    for node in nodes:
        entry = node.name
        if entry in NOT_NAMES or b"/" in entry or b"\0" in entry or entry in seen:
            why = "twice" if entry in seen else "not a file name"
            raise errors.IntegrityError(name=name, detail=f"entry {entry!r} is {why}")
        seen.add(entry)
