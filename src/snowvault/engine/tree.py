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
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

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
    doc: dict[str, Any] = {"type": node.type}
    _put_bytes(doc, "name", node.name)
    # spelled out rather than looped: this runs once per backed-up entry
    if node.mode:
        doc["mode"] = node.mode
    if node.uid:
        doc["uid"] = node.uid
    if node.gid:
        doc["gid"] = node.gid
    if node.mtime_ns:
        doc["mtime_ns"] = node.mtime_ns
    if node.ctime_ns:
        doc["ctime_ns"] = node.ctime_ns
    if node.inode:
        doc["inode"] = node.inode
    if node.device:
        doc["device"] = node.device
    if node.size:
        doc["size"] = node.size
    if node.rdev:
        doc["rdev"] = node.rdev
    if node.nlink != 1:
        doc["nlink"] = node.nlink
    if node.user is not None:
        doc["user"] = node.user
    if node.group is not None:
        doc["group"] = node.group
    if node.target is not None:
        _put_bytes(doc, "target", node.target)
    if node.xattrs:
        doc["xattrs"] = [
            [_bytes_pair(k), base64.b64encode(v).decode("ascii")] for k, v in node.xattrs
        ]
    if node.content:
        doc["content"] = node.content
    if node.subtree is not None:
        doc["subtree"] = node.subtree
    if node.extra:
        doc["extra"] = node.extra
    return doc


def node_from_dict(doc: dict[str, Any]) -> Node:
    # spelled out rather than looped: this runs once per entry of every parent tree
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
        user=sys.intern(user) if type(user) is str else user,  # a few names, many nodes
        group=sys.intern(group) if type(group) is str else group,
        mtime_ns=int(get("mtime_ns", 0)),
        ctime_ns=int(get("ctime_ns", 0)),
        inode=int(get("inode", 0)),
        device=int(get("device", 0)),
        size=int(get("size", 0)),
        nlink=int(get("nlink", 1)),
        target=_get_bytes(doc, "target") if ("target" in doc or "target_b64" in doc) else None,
        rdev=int(get("rdev", 0)),
        xattrs=tuple((_from_pair(k), base64.b64decode(v, validate=True)) for k, v in xattrs)
        if xattrs
        else (),
        content=tuple(_chunk(c) for c in content) if content else (),
        subtree=get("subtree"),
        extra=dict(extra) if extra else {},
    )


def _chunk(c: list[Any]) -> Chunk:
    blob, length = c
    if (blob is not None and not isinstance(blob, str)) or not isinstance(length, int):
        raise ValueError(f"bad content entry {c!r:.80}")
    return (blob, length)


# ------------------------------------------------------------------ tree <-> bytes


def encode_tree(nodes: Iterable[Node]) -> bytes:
    """The canonical bytes of a directory: nodes sorted by raw name, unique names."""
    ordered = sorted(nodes, key=lambda n: n.name)
    for before, after in itertools.pairwise(ordered):
        if before.name == after.name:
            raise ValueError(f"duplicate name in tree: {before.text_name}")
    doc = {"nodes": [node_to_dict(n) for n in ordered], "version": TREE_VERSION}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


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
