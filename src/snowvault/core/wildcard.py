"""Wildcard patterns matched without backtracking.

Policies (``*`` and ``?``), backup selections' ARNs and tag conditions (``*``) are
written by callers, so matching them must cost at most pattern length times text
length. A regular expression with one ``.*`` per ``*`` does not: Python's backtracking
engine takes exponential time for ``"*" * 40 + "!"`` against a text that does not
match, holding the GIL, which stops every thread of the server. :func:`match` instead
steps through the text once, carrying the set of pattern positions reached so far
(a Thompson-style simulation: at most ``len(pattern) + 1`` positions per character).

Depends on nothing.
"""

from __future__ import annotations


def match(
    pattern: str,
    text: str,
    *,
    any_one: bool = True,
    star_crosses_space: bool = True,
    ignore_case: bool = False,
) -> bool:
    """Whether ``text`` matches ``pattern`` whole: ``*`` covers any run of characters
    (none of them whitespace when ``star_crosses_space`` is false), ``?`` exactly one
    when ``any_one``; every other character stands for itself.

    >>> match("arn:*:vault/?x", "arn:aws:vault/ax"), match("*" * 40 + "!", "a" * 60)
    (True, False)
    >>> match("a*b", "a c b", star_crosses_space=False), match("A*", "ab", ignore_case=True)
    (False, True)
    """
    if ignore_case:
        pattern, text = pattern.lower(), text.lower()
    if "*" not in pattern and not (any_one and "?" in pattern):
        return pattern == text
    end = len(pattern)

    def closure(positions: set[int]) -> set[int]:
        """The positions plus those reached by letting a ``*`` cover nothing."""
        out = set()
        for i in positions:
            out.add(i)
            while i < end and pattern[i] == "*":
                i += 1
                out.add(i)
        return out

    reached = closure({0})
    for ch in text:
        step = set()
        for i in reached:
            if i == end:
                continue
            p = pattern[i]
            if p == "*":
                if star_crosses_space or not ch.isspace():
                    step.add(i)
            elif p == ch or (any_one and p == "?"):
                step.add(i + 1)
        if not step:
            return False
        reached = closure(step)
    return end in reached
