"""A passphrase's key derived ahead on a thread (keyslots.Derivation): the same secret
as deriving it when the slot is opened, used only for the slot and passphrase it was
derived for, and never in the way when reading the slots or deriving fails."""

from __future__ import annotations

import pytest

from snowvault.engine import errors
from snowvault.engine.backends.memory import MemoryBackend
from snowvault.engine.crypto import KdfParams, keyslots, primitives
from snowvault.engine.repository import Repository

REPO_ID = "a" * 64
SECRET = bytes(range(32))
CHEAP = KdfParams.for_tests()


def _slot(slot_id: str, passphrase: str) -> keyslots.KeySlot:
    return keyslots.passphrase_slot(SECRET, passphrase, REPO_ID, slot_id, CHEAP)


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The salts scrypt is called with, on any thread."""
    calls: list[bytes] = []
    real = primitives.scrypt

    def scrypt(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
        calls.append(salt)
        return real(passphrase, salt, n, r, p)

    monkeypatch.setattr(primitives, "scrypt", scrypt)
    return calls


def test_the_derived_key_opens_its_slot_without_deriving_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slot = _slot("s1", "pw")
    calls = _counting(monkeypatch)
    derived = keyslots.Derivation("pw", lambda: [slot.to_bytes()])
    assert keyslots.open_slot(slot, REPO_ID, passphrase="pw", derived=derived) == SECRET
    assert len(calls) == 1  # on the thread, not again in open_slot


def test_a_wrong_passphrase_still_fails_and_a_derivation_of_another_is_not_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slot = _slot("s1", "pw")
    calls = _counting(monkeypatch)
    wrong = keyslots.Derivation("nope", lambda: [slot.to_bytes()])
    assert keyslots.open_slot(slot, REPO_ID, passphrase="nope", derived=wrong) is None
    # derived for "nope", asked for "pw": derived again, and it opens
    assert keyslots.open_slot(slot, REPO_ID, passphrase="pw", derived=wrong) == SECRET
    assert len(calls) == 2


def test_only_the_first_passphrase_slot_is_derived_and_the_others_still_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw = keyslots.raw_slot(SECRET, b"k" * 32, REPO_ID, "r1")
    first, second = _slot("s1", "one"), _slot("s2", "two")
    calls = _counting(monkeypatch)
    stored = [raw.to_bytes(), first.to_bytes(), second.to_bytes()]
    derived = keyslots.Derivation("two", lambda: stored)
    assert keyslots.open_slot(first, REPO_ID, passphrase="two", derived=derived) is None
    assert keyslots.open_slot(second, REPO_ID, passphrase="two", derived=derived) == SECRET
    assert calls == [_salt(first), _salt(second)]  # the first on the thread, once


def test_failed_reads_and_damaged_slots_leave_the_opening_to_open_slot() -> None:
    slot = _slot("s1", "pw")

    def unreadable() -> list[bytes]:
        raise OSError("store down")

    for read in (unreadable, lambda: [b"{not json"], lambda: [b'{"version": 1}']):
        derived = keyslots.Derivation("pw", read)
        assert keyslots.open_slot(slot, REPO_ID, passphrase="pw", derived=derived) == SECRET


def test_a_repository_opens_with_a_derivation_and_rejects_a_wrong_passphrase() -> None:
    backend = MemoryBackend()
    created = Repository.init(backend, password="pw", kdf=CHEAP)
    created.close()

    def read_slots() -> list[bytes]:
        return [backend.get(info.name) for info in backend.list("keys/")]

    opened = Repository.open(backend, password="pw", derived=keyslots.Derivation("pw", read_slots))
    assert opened.config.id == created.config.id
    opened.close()
    with pytest.raises(errors.WrongKey):
        Repository.open(backend, password="x", derived=keyslots.Derivation("x", read_slots))


def _salt(slot: keyslots.KeySlot) -> bytes:
    return keyslots._unb64(slot.body["kdf"]["salt"])
