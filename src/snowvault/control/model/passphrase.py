"""How strong a recovery passphrase is: a pure, dependency-free estimate.

A passphrase is accepted when it has at least :data:`MIN_LENGTH` characters and an
estimated :data:`MIN_BITS` bits or more. The estimate is deliberately simple and
conservative, in the spirit of zxcvbn without its dictionaries:

1. A passphrase that is one unit repeated (``abcabcabc``) counts as the unit once.
2. A character that is predictable from the one before it — the same character, or the
   next/previous one in ``0123456789abcdefghijklmnopqrstuvwxyz`` or along a keyboard
   row (``qwertyuiop``, ``asdfghjkl``, ``zxcvbnm``, ``1234567890``) — adds nothing.
3. Every other character adds log2 of the size of the character classes used
   (lower 26, upper 26, digits 10, other ASCII 33, anything else 100).

    >>> estimate_bits("aaaaaaaaaaaaaaaa"), estimate_bits("123456789abc")
    (0.0, 0.0)
    >>> round(estimate_bits("correct horse battery staple"))
    124
    >>> check("Password1234").ok
    False

Depends on nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MIN_LENGTH = 12
MIN_BITS = 50.0
RULE = (
    f"at least {MIN_LENGTH} characters and an estimated {MIN_BITS:.0f} bits of strength "
    "(length times the size of the character classes used, not counting repeats, "
    "repeated patterns, runs like abc or 123, or keyboard runs like qwerty); "
    "a few random words or a long mixed-character string pass"
)
_SEQUENCES = (
    "0123456789abcdefghijklmnopqrstuvwxyz",
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "1234567890",
)
_OTHER_ASCII = 33


@dataclass(frozen=True)
class Verdict:
    ok: bool
    bits: float
    length: int


def check(passphrase: str) -> Verdict:
    bits = estimate_bits(passphrase)
    ok = len(passphrase) >= MIN_LENGTH and bits >= MIN_BITS
    return Verdict(ok=ok, bits=bits, length=len(passphrase))


def estimate_bits(passphrase: str) -> float:
    unit = _shortest_unit(passphrase)
    pool = _pool_size(unit)
    if pool <= 1:
        return 0.0
    free = sum(1 for i, ch in enumerate(unit) if i > 0 and not _follows(unit[i - 1], ch))
    # The first character counts only when something else does: "aaaa" and "abcd" are 0.
    effective = free + 1 if free else 0
    return effective * math.log2(pool)


def _shortest_unit(text: str) -> str:
    n = len(text)
    for size in range(1, n // 2 + 1):
        if n % size == 0 and text[:size] * (n // size) == text:
            return text[:size]
    return text


def _pool_size(text: str) -> int:
    lower = any("a" <= c <= "z" for c in text)
    upper = any("A" <= c <= "Z" for c in text)
    digit = any("0" <= c <= "9" for c in text)
    other = any(c.isascii() and not c.isalnum() for c in text)
    beyond = any(not c.isascii() for c in text)
    return 26 * lower + 26 * upper + 10 * digit + _OTHER_ASCII * other + 100 * beyond


def _follows(prev: str, ch: str) -> bool:
    """True when ``ch`` is guessable from ``prev`` (same, or a neighbour in a sequence)."""
    a, b = prev.lower(), ch.lower()
    if a == b:
        return True
    for seq in _SEQUENCES:
        i, j = seq.find(a), seq.find(b)
        if i >= 0 and j >= 0 and abs(i - j) == 1:
            return True
    return False
