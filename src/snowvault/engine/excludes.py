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


class Excludes:
    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = tuple(patterns)
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
