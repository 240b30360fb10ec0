"""The recovery passphrase rule: 12+ characters and ~50 bits by a simple estimate."""

from __future__ import annotations

import pytest

from snowvault.control.model import passphrase

WEAK = [
    "short",  # too short, whatever else
    "Xq7#mK2!pL9",  # 11 characters of four classes: the length rule alone refuses it
    "aaaaaaaaaaaaaaaaaaaa",  # one character repeated
    "abcabcabcabcabc",  # one unit repeated
    "passwordpassword",  # a word repeated
    "123456789abc",  # one run through digits and letters
    "qwertyuiop12",  # a keyboard row
    "ZyXwVuTsRqPo",  # a descending run, mixed case
    "Password1234",  # a word and a run: ~42 bits
    "password1234",
]
STRONG = [
    "correct horse battery staple",
    "a long recovery passphrase",
    "Tr0ub4dor&3x",
    "7fK!q2Lz#9Wm",
    "zwölf Äpfel im Körbchen",  # non-ASCII letters count as a class of their own
]


@pytest.mark.parametrize("text", WEAK)
def test_weak_passphrases_are_refused(text: str) -> None:
    verdict = passphrase.check(text)
    assert not verdict.ok, (text, verdict)


@pytest.mark.parametrize("text", STRONG)
def test_strong_passphrases_pass(text: str) -> None:
    verdict = passphrase.check(text)
    assert verdict.ok, (text, verdict)
    assert verdict.bits >= passphrase.MIN_BITS


def test_predictable_strings_score_nothing() -> None:
    assert passphrase.estimate_bits("") == 0
    assert passphrase.estimate_bits("a" * 64) == 0
    assert passphrase.estimate_bits("0123456789abcdefghijklmnopqrstuvwxyz") == 0
    assert passphrase.estimate_bits("asdfghjkl") == 0


def test_more_classes_and_more_free_characters_score_more() -> None:
    assert passphrase.estimate_bits("kqzmvtrw") < passphrase.estimate_bits("kqzmvtrwxj")
    assert passphrase.estimate_bits("kqzmvtrwxj") < passphrase.estimate_bits("kQzm4trW!j")


def test_the_rule_text_names_both_limits() -> None:
    assert "12 characters" in passphrase.RULE and "50 bits" in passphrase.RULE
