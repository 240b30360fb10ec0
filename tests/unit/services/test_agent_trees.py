"""The manifest's tree check (services/agent_trees.py): the same refusals and the same
reached set as one walk reading every tree, with trees read by runs of a pack (a point
of many directories costs a few ranged reads), remembered once they passed (a second
check of the same point reads nothing), and refusals never remembered."""

from __future__ import annotations

from collections import Counter

import pytest

from snowvault.control.services import agent_trees
from snowvault.core.errors import InvalidInput
from snowvault.engine import errors, prune, tree
from snowvault.engine.backends.memory import MemoryBackend
from snowvault.engine.repository import Repository

KEY = b"k" * 32


class Counting(MemoryBackend):
    def __init__(self, label: str) -> None:
        super().__init__(label)
        self.ranged: Counter[str] = Counter()

    def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        if name.startswith("data/"):
            self.ranged[name] += 1
        return super().get(name, offset, length)


def _point(repo: Repository, dirs: int, bad: str | None = None) -> str:
    """A root with ``dirs`` subdirectories of two files each; ``bad``: a node type or
    "setuid" placed in the last one."""
    subs = []
    for n in range(dirs):
        chunk = repo.add_blob("data", f"file {n}".encode()).hex()
        nodes = [
            tree.Node(name=b"a", type="file", mode=0o644, size=6, content=((chunk, 6),)),
            tree.Node(name=b"b", type="file", mode=0o644),
        ]
        if bad is not None and n == dirs - 1:
            if bad == "setuid":
                nodes.append(tree.Node(name=b"s", type="file", mode=0o4755))
            else:
                nodes.append(tree.Node(name=b"dev", type=bad, rdev=1))
        sub = repo.add_blob("tree", tree.encode_tree(nodes)).hex()
        subs.append(tree.Node(name=f"d{n:03d}".encode(), type="dir", mode=0o755, subtree=sub))
    root = repo.add_blob("tree", tree.encode_tree(subs)).hex()
    repo.flush()
    return root


def test_the_check_reaches_what_one_walk_reaches_with_a_few_reads_then_none() -> None:
    agent_trees.forget()
    backend = Counting("trees")
    repo = Repository.init(backend, raw_key=KEY)
    root = _point(repo, 120)
    fresh = Repository.open(backend, raw_key=KEY)
    backend.ranged.clear()
    used = agent_trees.check(fresh, root)
    assert 0 < sum(backend.ranged.values()) <= 4  # two levels, one tree pack: not 121
    assert used == prune.used_blobs(fresh, [{"tree": root}])
    backend.ranged.clear()
    assert agent_trees.check(Repository.open(backend, raw_key=KEY), root) == used
    assert sum(backend.ranged.values()) == 0  # every tree remembered


@pytest.mark.parametrize("bad", ["chardev", "blockdev", "setuid"])
def test_a_refused_tree_is_refused_every_time(bad: str) -> None:
    agent_trees.forget()
    repo = Repository.init(MemoryBackend(f"bad-{bad}"), raw_key=KEY)
    root = _point(repo, 3, bad=bad)
    for _ in range(2):
        with pytest.raises(InvalidInput, match="/d002/"):
            agent_trees.check(repo, root)


def test_a_tree_the_vault_lacks_is_an_integrity_error() -> None:
    agent_trees.forget()
    repo = Repository.init(MemoryBackend("lacks"), raw_key=KEY)
    with pytest.raises(errors.IntegrityError, match="not in the index"):
        agent_trees.check(repo, "ab" * 32)


def test_what_is_remembered_is_bound_to_the_place_of_the_bytes() -> None:
    """The same tree id in another vault (another location) is read and checked there."""
    agent_trees.forget()
    one, two = Counting("one"), Counting("two")
    roots = []
    for backend in (one, two):
        repo = Repository.init(backend, raw_key=KEY)
        roots.append(_point(repo, 5))
    agent_trees.check(Repository.open(one, raw_key=KEY), roots[0])
    two.ranged.clear()
    agent_trees.check(Repository.open(two, raw_key=KEY), roots[1])
    assert sum(two.ranged.values()) > 0


def test_a_deep_point_is_read_in_a_few_reads_not_one_per_level() -> None:
    """Directories nested 40 deep: 40 levels of one tree each. A writer stores a
    directory's tree after its subdirectories', so the first read of the pack (with
    what lies before the root's tree) holds the levels below."""
    agent_trees.forget()
    backend = Counting("deep")
    repo = Repository.init(backend, raw_key=KEY)
    sub: str | None = None
    for depth in range(40):
        nodes = [tree.Node(name=f"f{depth}".encode(), type="file", mode=0o644)]
        if sub is not None:
            nodes.append(tree.Node(name=b"d", type="dir", mode=0o755, subtree=sub))
        sub = repo.add_blob("tree", tree.encode_tree(nodes)).hex()
    repo.flush()
    assert sub is not None
    fresh = Repository.open(backend, raw_key=KEY)
    backend.ranged.clear()
    used = agent_trees.check(fresh, sub)
    assert sum(backend.ranged.values()) <= 2  # not 40
    assert used == prune.used_blobs(fresh, [{"tree": sub}])
