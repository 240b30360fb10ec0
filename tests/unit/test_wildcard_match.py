"""core.wildcard: the same answers as the regular expressions it replaced, without their
backtracking (policies and selections are written by callers)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from snowvault.core import wildcard

ALPHABET = "ab:/ *?"


def _regex(pattern: str, *, any_one: bool, star: str) -> re.Pattern[str]:
    parts = []
    for ch in pattern:
        if ch == "*":
            parts.append(star)
        elif ch == "?" and any_one:
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return re.compile("^" + "".join(parts) + "$", re.DOTALL)


@settings(max_examples=400, derandomize=True)
@given(st.text(ALPHABET, max_size=8), st.text(ALPHABET.replace("*", ""), max_size=10))
def test_agrees_with_a_regular_expression(pattern: str, text: str) -> None:
    for any_one in (True, False):
        want = _regex(pattern, any_one=any_one, star=".*").match(text) is not None
        assert wildcard.match(pattern, text, any_one=any_one) is want
    want = _regex(pattern, any_one=False, star=r"\S*").match(text) is not None
    assert wildcard.match(pattern, text, any_one=False, star_crosses_space=False) is want


def test_case_is_ignored_only_when_asked() -> None:
    assert wildcard.match("backup:Describe*", "BACKUP:describebackupvault", ignore_case=True)
    assert not wildcard.match("backup:Describe*", "backup:describebackupvault")


def test_many_stars_against_a_text_that_does_not_match_end_at_once() -> None:
    """The pattern that froze the server through a policy (test_probe_glob_redos):
    exponential for the regex (minutes), pattern x text steps here (milliseconds);
    a return to backtracking hangs this test until the suite's timeout."""
    for n in (40, 200):
        assert not wildcard.match("*" * n + "!", "a" * 400)
        assert not wildcard.match("a*" * n + "!", "a" * 400)
        assert wildcard.match("a*" * n, "a" * 400)
