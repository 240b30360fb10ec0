"""Gitignore-style excludes."""

from __future__ import annotations

import pytest

from snowvault.core import errors
from snowvault.engine.excludes import Excludes


@pytest.mark.parametrize(
    ("path", "is_dir", "excluded"),
    [
        (b"a.log", False, True),
        (b"deep/er/a.log", False, True),
        (b"keep.log", False, False),
        (b"cache", True, True),
        (b"x/cache", True, True),
        (b"cache", False, False),
        (b"top.tmp", False, True),
        (b"sub/top.tmp", False, False),
        (b"caf\xe9.log", False, True),
        (b"src/main.py", False, False),
    ],
)
def test_gitignore_semantics(path: bytes, is_dir: bool, excluded: bool) -> None:
    ex = Excludes(["*.log", "!keep.log", "cache/", "/top.tmp"])
    assert ex.excluded(path, is_dir=is_dir) is excluded


def test_no_patterns_exclude_nothing() -> None:
    ex = Excludes([])
    assert not ex and not ex.excluded(b"anything", is_dir=False)


def test_a_bad_pattern_is_invalid_input() -> None:
    with pytest.raises(errors.InvalidInput):
        Excludes(["a/**/[z-a]"])


def test_a_pattern_of_many_wildcards_is_refused_before_it_is_compiled() -> None:
    """pathspec's regex for ``a*a*...!`` backtracks for minutes on a long name."""
    with pytest.raises(errors.InvalidInput, match="wildcards"):
        Excludes(["a*" * 30 + "!"])
    assert Excludes(["**/build/*.o", "*.log"]).excluded(b"x/build/y.o", is_dir=False)
