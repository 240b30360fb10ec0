"""Exclude patterns for backups: gitignore semantics through ``pathspec``.

Paths are matched relative to the backup root with ``/`` separators; directories are
matched with a trailing ``/`` so ``build/`` excludes directories only. Raw names are
decoded with ``surrogateescape`` so non-UTF-8 names can still be matched.

    >>> ex = Excludes(["*.log", "cache/", "!keep.log"])
    >>> ex.excluded(b"a/x.log", is_dir=False), ex.excluded(b"keep.log", is_dir=False)
    (True, False)
    >>> ex.excluded(b"a/cache", is_dir=True), ex.excluded(b"a/cache", is_dir=False)
    (True, False)

Depends only on pathspec; knows nothing of repositories.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pathspec

from snowvault.core import errors

MAX_WILDCARDS = 16  # per pattern: pathspec's regexes backtrack, ~C(len(name), n) steps


class Excludes:
    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = tuple(patterns)
        for pattern in self.patterns:
            if isinstance(pattern, str) and _wildcards(pattern) > MAX_WILDCARDS:
                raise errors.InvalidInput(
                    detail=f"bad exclude pattern: more than {MAX_WILDCARDS} wildcards "
                    f"(* ? [) in {pattern[:60]!r}"
                )
        try:
            self._spec = pathspec.GitIgnoreSpec.from_lines(self.patterns) if patterns else None
        except (ValueError, TypeError, re.error) as exc:
            raise errors.InvalidInput(detail=f"bad exclude pattern: {exc}") from exc

    def __bool__(self) -> bool:
        return self._spec is not None

    def excluded(self, rel_path: bytes, *, is_dir: bool) -> bool:
        if self._spec is None:
            return False
        text = rel_path.decode("utf-8", "surrogateescape")
        if is_dir:
            text += "/"
        return bool(self._spec.match_file(text))


def _wildcards(pattern: str) -> int:
    """``*``, ``?`` and ``[`` in a pattern, a ``**`` counting once: more than
    :data:`MAX_WILDCARDS` of them make a regex that takes exponential time on a long
    name that does not match (``a*a*...a*!``).

    >>> _wildcards("**/a*b?[cd]"), _wildcards("a" * 30)
    (4, 0)
    """
    return sum(pattern.replace("**", "*").count(ch) for ch in "*?[")
