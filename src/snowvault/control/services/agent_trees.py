"""The tree check of an agent's manifest (AgentPutManifest): every tree the point reaches
is read back from the vault and refused when it holds what would let an agent escalate
on the host the point is restored to (docs/design/agents.md, threat model); every blob
id the trees reach is returned, for the caller's "the vault has it" check.

    used = agent_trees.check(repo, manifest_root_tree)   # InvalidInput: a refused node

Cheap, not weaker (docs/design/agents.md, "Costs of a job call"):

- trees are read level by level, grouped by pack: the trees of one level that lie close
  together in a pack come in one ranged read (an agent writes its trees into packs of
  their own), not one request per tree; a pack's first read in a check takes up to
  :data:`LOOK_BACK` before them too (a directory's tree is written after its
  subdirectories'), and later levels found in what was read are not read again;
- a tree that passed is remembered by where its bytes are: the vault's location, the
  pack, offset, length and kind, its id (the blob's AAD) and a hash of the key that
  opens the pack. Those bytes never change under that key (a pack is never rewritten;
  a keyed pack deleted by prune and sent again by a later job comes with that job's
  own key), so the check's outcome for them cannot change either. A point that shares
  its parent's trees (an unchanged directory) reads none of them again. Refusals are
  never remembered: they are raised every time.

Must not depend on the scheduler, the composition root or any interface.
"""

from __future__ import annotations

import stat
import threading
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from snowvault.core.errors import InvalidInput
from snowvault.engine import errors, index, packs, tree
from snowvault.engine.crypto import primitives
from snowvault.engine.repository import Repository

SET_ID_BITS = stat.S_ISUID | stat.S_ISGID
DEVICE_TYPES = frozenset({"chardev", "blockdev"})
RUN_GAP = 64 * 1024
"""Trees of one pack closer than this are read in one ranged request."""
MAX_RUN = 8 * 1024 * 1024
LOOK_BACK = 4 * 1024 * 1024
"""A pack's first read in a check also takes up to this much before the trees asked for:
a writer stores a directory's tree after its subdirectories' (the archiver's walk ends a
directory last), so the next levels down lie mostly just before, and one read of a pack
serves the levels below it (a point of 408 directories: 2 reads instead of 23)."""
MAX_HELD = 32 * 1024 * 1024
"""What one check keeps of the packs it read; beyond it, what was kept is dropped."""
MEMO_IDS = 1_000_000
"""Blob ids the remembered trees may name in all (about 100 bytes each), least recently
used forgotten first."""

_Checked = tuple[tuple[tuple[str, str], ...], frozenset[bytes]]
"""(subtrees as (id hex, entry name), content blob ids) of a tree that passed."""
_MemoKey = tuple[str, str, int, int, int, bytes, bytes]
_MEMO: OrderedDict[_MemoKey, _Checked] = OrderedDict()
_MEMO_LOCK = threading.Lock()
_memo_ids = [0]


def check(repo: Repository, root_tree: str) -> set[bytes]:
    """Refuse entry names that are not one file name (``tree.check_names``), device
    nodes, set-uid/set-gid files and xattrs outside ``user.*``
    (``security.capability`` grants capabilities) anywhere under ``root_tree``: a
    restore running as root recreates owners, modes, devices and xattrs. Every blob id
    the trees reach (trees and chunks). A tree missing from the index raises
    IntegrityError (the caller tells the agent's mistake from the store's trouble)."""
    used: set[bytes] = set()
    seen: set[str] = set()
    spans: _Spans = {}
    level = [(root_tree, "")]
    while level:
        todo: dict[str, str] = {}
        for tree_hex, where in level:
            if tree_hex not in seen:
                seen.add(tree_hex)
                todo.setdefault(tree_hex, where)
        ids = {tree_hex: bytes.fromhex(tree_hex) for tree_hex in todo}
        used.update(ids.values())
        keys = {h: _memo_key(repo, b) for h, b in ids.items()}
        checked: dict[str, _Checked] = {}
        with _MEMO_LOCK:
            for tree_hex, key in keys.items():
                hit = _MEMO.get(key) if key is not None else None
                if hit is not None:
                    _MEMO.move_to_end(key)  # type: ignore[arg-type]
                    checked[tree_hex] = hit
        missing = [h for h in todo if h not in checked]
        blobs = _read_blobs(repo, [ids[h] for h in missing], spans)
        for tree_hex in missing:
            where = todo[tree_hex]
            result = _check_one(blobs[ids[tree_hex]], where)
            checked[tree_hex] = result
            _remember(keys[tree_hex], result)
        level = []
        for tree_hex, (subtrees, contents) in checked.items():
            used.update(contents)
            where = todo[tree_hex]
            level += [(sub, f"{where}/{name}") for sub, name in subtrees]
    return used


def _check_one(data: bytes, where: str) -> _Checked:
    subtrees: list[tuple[str, str]] = []
    contents: set[bytes] = set()
    nodes = tree.decode_tree(data, name=where or "/")
    try:  # '..', '/abs', a '/' or NUL, a name twice: every restore would refuse the point
        tree.check_names(nodes, where or "/")
    except errors.IntegrityError as exc:
        raise InvalidInput(
            detail=f"{where or '/'}: {exc.fields.get('detail', exc)}: a tree entry must be "
            "one file name (docs/design/agents.md)"
        ) from None
    for node in nodes:
        contents.update(bytes.fromhex(c) for c, _ in node.content if c is not None)
        name = node.name.decode("utf-8", "replace")
        why = None
        if node.type in DEVICE_TYPES:
            why = f"a {node.type} node"
        elif node.type != "dir" and node.mode & SET_ID_BITS:  # a set-gid dir is fine
            why = "a set-uid or set-gid mode"
        elif any(not xname.startswith(b"user.") for xname, _ in node.xattrs):
            why = "an xattr outside user.*"
        if why is not None:
            raise InvalidInput(
                detail=f"{where}/{name} is {why}: agents may not store device nodes, set-id "
                "modes or non-user xattrs (docs/design/agents.md)"
            )
        if node.subtree is not None:
            subtrees.append((node.subtree, name))
    return tuple(subtrees), frozenset(contents)


def _memo_key(repo: Repository, blob_id: bytes) -> _MemoKey | None:
    loc = repo.master_index.get(blob_id)
    if loc is None:
        return None
    key = repo.pack_key(loc.pack_id)
    opener = b"" if key is None else primitives.content_hash(key.key + key.scope.encode())
    where = (repo.backend.location, loc.pack_id, loc.offset, loc.length, loc.kind)
    return (*where, blob_id, opener)


def _remember(key: _MemoKey | None, result: _Checked) -> None:
    if key is None:
        return
    with _MEMO_LOCK:
        if key not in _MEMO:
            _MEMO[key] = result
            _memo_ids[0] += len(result[1]) + len(result[0]) + 1
        while _memo_ids[0] > MEMO_IDS and _MEMO:
            _key, (subtrees, contents) = _MEMO.popitem(last=False)
            _memo_ids[0] -= len(contents) + len(subtrees) + 1


def forget() -> None:
    """Drop every remembered tree (tests)."""
    with _MEMO_LOCK:
        _MEMO.clear()
        _memo_ids[0] = 0


_Spans = dict[str, list[tuple[int, bytes]]]
"""What one check read of each pack: (offset, bytes) spans, kept for the check's levels."""


def _read_blobs(repo: Repository, ids: list[bytes], spans: _Spans) -> dict[bytes, bytes]:
    """The plaintext of ``ids``, read by runs of nearby blobs of one pack (a run inside
    what this check read of the pack before is not read again)."""
    by_pack: dict[str, list[tuple[bytes, index.Location]]] = {}
    for blob_id in ids:
        loc = repo.master_index.get(blob_id)
        if loc is None:
            raise errors.IntegrityError(name=f"blob {blob_id.hex()}", detail="not in the index")
        by_pack.setdefault(loc.pack_id, []).append((blob_id, loc))
    runs = [run for items in by_pack.values() for run in _runs(items)]
    out: dict[bytes, bytes] = {}
    todo = []
    for run in runs:
        held = _held(spans, run)
        if held is None:
            todo.append(run)
        else:
            out.update(_decode_run(repo, run, *held))
    firsts = {run[0][1].pack_id for run in todo if run[0][1].pack_id not in spans}
    if len(todo) == 1:
        found = [_read_run(repo, todo[0], todo[0][0][1].pack_id in firsts)]
    else:
        with ThreadPoolExecutor(4) as pool:
            found = list(
                pool.map(lambda run: _read_run(repo, run, run[0][1].pack_id in firsts), todo)
            )
    for run, (start, data) in zip(todo, found, strict=True):
        out.update(_decode_run(repo, run, start, data))
    if sum(len(d) for kept in spans.values() for _, d in kept) > MAX_HELD:
        spans.clear()
    for run, (start, data) in zip(todo, found, strict=True):
        spans.setdefault(run[0][1].pack_id, []).append((start, data))
    return out


def _held(spans: _Spans, run: list[tuple[bytes, index.Location]]) -> tuple[int, bytes] | None:
    start = run[0][1].offset
    end = max(loc.offset + loc.length for _, loc in run)
    for at, data in spans.get(run[0][1].pack_id, ()):
        if at <= start and end <= at + len(data):
            return at, data
    return None


def _runs(
    items: list[tuple[bytes, index.Location]],
) -> Iterator[list[tuple[bytes, index.Location]]]:
    items.sort(key=lambda item: item[1].offset)
    run: list[tuple[bytes, index.Location]] = []
    for item in items:
        loc = item[1]
        if run:
            start, last = run[0][1].offset, run[-1][1]
            if (
                loc.offset - (last.offset + last.length) > RUN_GAP
                or loc.offset + loc.length - start > MAX_RUN
            ):
                yield run
                run = []
        run.append(item)
    if run:
        yield run


def _read_run(
    repo: Repository, run: list[tuple[bytes, index.Location]], first: bool
) -> tuple[int, bytes]:
    """The bytes of ``run`` (from up to :data:`LOOK_BACK` before it, on the check's
    first read of the pack): (offset, bytes)."""
    name = packs.pack_name(run[0][1].pack_id)
    end = max(loc.offset + loc.length for _, loc in run)
    start = run[0][1].offset
    if first:
        start = max(0, start - LOOK_BACK)
    try:
        return start, repo.backend.get(name, start, end - start)
    except (errors.ObjectNotFound, errors.ShortRead) as exc:
        raise errors.IntegrityError(name=name, detail=f"trees at {start}: {exc}") from exc


def _decode_run(
    repo: Repository, run: list[tuple[bytes, index.Location]], start: int, data: bytes
) -> dict[bytes, bytes]:
    name = packs.pack_name(run[0][1].pack_id)
    out = {}
    for blob_id, loc in run:
        sealed = data[loc.offset - start : loc.offset - start + loc.length]
        out[blob_id] = repo.decode_blob(blob_id, loc.kind, sealed, name)
    return out
