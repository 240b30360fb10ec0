"""browse.walk serves a listing in pages (ListRecoveryPointContents): resumed after any
entry it yielded, the pages put together are exactly ``ls``, for every page size, a
subdirectory, recursive or not; a position that is not an entry of the listing is
refused (helper Q: a recursive listing of a large point was one unbounded answer)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from snowvault.core import errors
from snowvault.engine import archiver, browse
from snowvault.testing import FakeRepository

NOW = datetime(2026, 3, 4, tzinfo=UTC)


@pytest.fixture(scope="module")
def point(tmp_path_factory: pytest.TempPathFactory) -> tuple[FakeRepository, str]:
    src = tmp_path_factory.mktemp("src")
    # names whose byte order differs from the walk's order ("a" < "a-x" < "a/b")
    for rel in ["a/b", "a/c/d", "a/c/e", "a-x", "b.txt", "c/d/e/f", "c/g", "z"]:
        target = src / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(rel)
    (src / "empty").mkdir()
    repo = FakeRepository()
    return repo, archiver.backup_paths(repo, [src], now=NOW).rp_id


def pages(repo: FakeRepository, rp: str, path: str, recursive: bool, size: int) -> list[str]:
    out: list[str] = []
    after: bytes | None = None
    while True:
        page = list(itertools.islice(browse.walk(repo, rp, path, recursive, after), size))
        out += [e.path for e in page]
        if len(page) < size:
            return out
        after = page[-1].raw_path


@pytest.mark.parametrize(
    ("path", "recursive"), [("/", True), ("/", False), ("/a", True), ("/c/d", True)]
)
def test_pages_of_every_size_put_together_are_the_listing(
    point: tuple[FakeRepository, str], path: str, recursive: bool
) -> None:
    repo, rp = point
    whole = [e.path for e in browse.ls(repo, rp, path, recursive)]
    assert len(whole) >= 2
    for size in range(1, len(whole) + 2):
        assert pages(repo, rp, path, recursive, size) == whole, size


def test_a_file_listed_alone_has_one_page(point: tuple[FakeRepository, str]) -> None:
    repo, rp = point
    [entry] = browse.walk(repo, rp, "/a/b")
    assert list(browse.walk(repo, rp, "/a/b", after=entry.raw_path)) == []


@pytest.mark.parametrize(
    ("path", "recursive", "after"),
    [
        ("/", True, b"/nope"),  # no such entry
        ("/", True, b"/a/nope"),
        ("/", False, b"/a/b"),  # below an entry a flat listing never entered
        ("/a", True, b"/c/d"),  # outside the listed directory
        ("/a", True, b"/a"),  # the directory itself is not one of its entries
        ("/", True, b"/"),
        ("/", True, b"a/b"),  # not a raw path
        ("/a/b", False, b"/a/c"),  # a file listed alone
        ("/", True, b"/a/b/x"),  # below a file
    ],
)
def test_a_position_not_in_the_listing_is_refused(
    point: tuple[FakeRepository, str], path: str, recursive: bool, after: bytes
) -> None:
    repo, rp = point
    with pytest.raises(errors.InvalidInput):
        list(browse.walk(repo, rp, path, recursive, after))
