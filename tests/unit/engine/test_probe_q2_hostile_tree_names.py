"""A tree naming an entry ``..``, ``/abs``, ``a/b``, ``.``, empty, with a NUL, or the
same name twice (whoever made the backup wrote the tree, an agent's host too) is never
shown or followed as a path by a listing (``browse.ls``, ``browse.diff``: the API's
ListRecoveryPointContents, ``repo ls``/``repo diff``): the directory is refused as a
damaged tree, as the restorer refuses it, by the one check in ``tree.check_names``
(helper Q's probe).

``check`` names such a tree as a problem, and the agent manifest's tree check
(``services/agent_trees.py``) refuses a point holding one (both let it through before).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from snowvault.control.services import agent_trees
from snowvault.core.errors import InvalidInput
from snowvault.engine import archiver, browse, check, errors, restorer, tree
from snowvault.engine.backends.memory import MemoryBackend
from snowvault.engine.repository import Repository
from snowvault.testing import FakeRepository

NOW = datetime(2026, 3, 4, tzinfo=UTC)
KEY = b"q" * 32
BAD = [b"..", b".", b"", b"/abs-evil", b"a/b", b"../up", b"nul\0name"]


def _file(name: bytes) -> tree.Node:
    return tree.Node(name=name, type="file", mode=0o644)


def _hostile_point(repo: Repository | FakeRepository, bad: bytes, twice: bool = False) -> str:
    """A point whose root holds ``ok.txt`` and ``sub/``; ``sub``'s tree holds ``fine``
    and an entry named ``bad`` (a directory holding ``payload``), or ``fine`` twice."""
    payload = repo.add_blob("tree", tree.encode_tree([_file(b"payload")])).hex()
    inner = [_file(b"fine")]
    if twice:  # encode_tree refuses a name twice: write the JSON as a hostile writer
        body = tree.encode_tree(inner).replace(b"]", b"," + _node_json(b"fine") + b"]", 1)
    else:
        inner.append(tree.Node(name=bad, type="dir", mode=0o755, subtree=payload))
        body = tree.encode_tree(inner)
    sub = repo.add_blob("tree", body).hex()
    root = tree.encode_tree([_file(b"ok.txt"), tree.Node(name=b"sub", type="dir", subtree=sub)])
    root_id = repo.add_blob("tree", root).hex()
    return _with_tree(repo, root_id)


def _node_json(name: bytes) -> bytes:
    whole = tree.encode_tree([_file(name)])
    return whole[whole.index(b"[") + 1 : whole.rindex(b"]")]


def _with_tree(repo: Repository | FakeRepository, root_id: str) -> str:
    base = _base_manifest(repo)
    base["tree"] = root_id
    repo.flush()
    return repo.save_manifest(base)


_BASES: dict[int, dict[str, object]] = {}


def _base_manifest(repo: Repository | FakeRepository) -> dict[str, object]:
    rp = _BASES.get(id(repo))
    if rp is None:
        raise AssertionError("call _seed first")
    return dict(rp)


def _seed(repo: Repository | FakeRepository, tmp_path: Path) -> str:
    """An honest point (its manifest is the template of the hostile ones)."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "fine").write_bytes(b"fine")
    (src / "ok.txt").write_bytes(b"ok")
    rp = archiver.backup_paths(repo, [src], now=NOW).rp_id  # type: ignore[arg-type]
    _BASES[id(repo)] = repo.load_manifest(rp)
    return rp


@pytest.mark.parametrize("bad", BAD)
def test_check_names_refuses_what_is_not_one_component(bad: bytes) -> None:
    with pytest.raises(errors.IntegrityError, match=r"tree 00.*not a file name"):
        tree.check_names([_file(b"fine"), _file(bad)], "tree 00")


def test_check_names_refuses_a_name_twice_and_passes_odd_but_single_names() -> None:
    with pytest.raises(errors.IntegrityError, match="twice"):
        tree.check_names([_file(b"a"), _file(b"a")])
    tree.check_names([_file(n) for n in (b"...", b".hidden", b"\xff\xfe", b"a\\b", b" ")])


Listing = Callable[[FakeRepository, str, str], object]
LISTINGS: dict[str, Listing] = {
    "ls recursive": lambda repo, rp, honest: browse.ls(repo, rp, "/", recursive=True),
    "ls sub": lambda repo, rp, honest: browse.ls(repo, rp, "/sub"),
    "ls sub/fine": lambda repo, rp, honest: browse.ls(repo, rp, "/sub/fine"),
    "diff from honest": lambda repo, rp, honest: browse.diff(repo, honest, rp),
    "diff to honest": lambda repo, rp, honest: browse.diff(repo, rp, honest),
}


@pytest.mark.parametrize("listing", sorted(LISTINGS))
@pytest.mark.parametrize("bad", [*BAD, b"twice"])
def test_a_listing_refuses_a_hostile_directory_as_damaged(
    tmp_path: Path, bad: bytes, listing: str
) -> None:
    repo = FakeRepository()
    honest = _seed(repo, tmp_path)
    rp = _hostile_point(repo, bad, twice=bad == b"twice")
    with pytest.raises(errors.IntegrityError, match=r"directory /sub .*(not a file name|twice)"):
        LISTINGS[listing](repo, rp, honest)
    # the directory above still lists, and the restorer refuses the same directory
    assert [e.path for e in browse.ls(repo, rp, "/")] == ["/ok.txt", "/sub"]
    root = restorer.load_tree(repo, restorer.root_tree(repo, rp), b"")
    sub = next(n.subtree for n in root if n.name == b"sub")
    assert sub is not None
    with pytest.raises(errors.IntegrityError, match=r"not a file name|twice"):
        restorer.load_tree(repo, sub, b"sub")


def _repository(tmp_path: Path, label: str) -> Repository:
    repo = Repository.init(MemoryBackend(label), raw_key=KEY)
    _seed(repo, tmp_path)
    return repo


def test_check_names_a_hostile_tree_as_a_problem(tmp_path: Path) -> None:
    repo = _repository(tmp_path, "check-hostile")
    _hostile_point(repo, b"..")
    report = check.check(Repository.open(repo.backend, raw_key=KEY))
    assert not report.ok
    assert any("not a file name" in p.detail for p in report.problems), report.problems


@pytest.mark.parametrize("bad", [b"..", b"/abs-evil"])
def test_an_agent_manifest_with_a_hostile_name_is_refused(tmp_path: Path, bad: bytes) -> None:
    agent_trees.forget()
    repo = _repository(tmp_path, f"agent-hostile-{bad.hex()}")
    rp = _hostile_point(repo, bad)
    root = repo.load_manifest(rp)["tree"]
    with pytest.raises((InvalidInput, errors.IntegrityError), match=r"not a file name|/sub"):
        agent_trees.check(Repository.open(repo.backend, raw_key=KEY), root)
