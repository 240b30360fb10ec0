"""Key slots: the repository secret, wrapped. Several may exist; data is never re-encrypted.

A slot is a small JSON object stored at ``keys/<slot-id>``::

    {"version": 1, "type": "passphrase", "id": "<slot-id>",
     "kdf": {"name": "scrypt", "n": 32768, "r": 8, "p": 1, "salt": "<b64>"},
     "wrapped": "<b64 of AES-256-GCM(kek, secret, aad)>"}

Types: ``passphrase`` (kek = scrypt(passphrase)), ``raw`` (kek = HKDF(raw key)),
``external`` (the secret is wrapped by a :class:`KeyWrapper` such as a KMS key; the slot
stores the wrapper's name and public parameters, e.g. the key ARN, and its opaque
ciphertext). New slot types are new ``type`` values: no format change.
The AAD binds a slot to its repository and slot id, so a slot cannot be moved.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from snowvault.engine.crypto import primitives

SLOT_VERSION = 1


class KeyWrapper(Protocol):
    """Wraps and unwraps the repository secret for an ``external`` slot (e.g. KMS)."""

    name: str

    def params(self) -> dict[str, Any]:
        """Public parameters stored in the slot (never secrets), e.g. {"key_arn": ...}."""
        ...

    def wrap(self, secret: bytes, aad: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes, aad: bytes, params: dict[str, Any]) -> bytes: ...


@dataclass(frozen=True)
class KdfParams:
    n: int = 2**15
    r: int = 8
    p: int = 1

    @classmethod
    def for_tests(cls) -> KdfParams:
        """Cheap parameters: tests only, passed explicitly."""
        return cls(n=2**4, r=1, p=1)


@dataclass(frozen=True)
class KeySlot:
    id: str
    type: str
    body: dict[str, Any] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        doc = {"version": SLOT_VERSION, "type": self.type, "id": self.id, **self.body}
        return json.dumps(doc, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> KeySlot:
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("version") != SLOT_VERSION:
            raise ValueError("unsupported key slot version")
        slot_id, slot_type = str(doc.pop("id")), str(doc.pop("type"))
        doc.pop("version")
        return cls(slot_id, slot_type, doc)


class Derivation:
    """The key-encryption key of a passphrase slot, derived on a thread of its own while
    the caller goes on with work that needs no key (imports, other reads of the store):
    scrypt releases the GIL, so on a second core its ~0.13 s (n=2**15, r=8) costs no wall
    time. :func:`open_slot` takes the result only for the same passphrase, salt and
    parameters, else derives as before; a failed read or derivation leaves it to do so
    (and raise)::

        derived = Derivation(passphrase, read_slots)  # returns at once
        ...                                           # imports, reads
        open_slot(slot, repo_id, passphrase=passphrase, derived=derived)

    ``read_slots`` returns the stored slots in the order the opener tries them, and runs
    on the thread too; only the first passphrase slot is derived (a repository with
    several derives the others as before, when tried).
    """

    def __init__(self, passphrase: str, read_slots: Callable[[], list[bytes]]) -> None:
        self._passphrase = passphrase
        self._result: tuple[tuple[bytes, int, int, int], bytes] | None = None
        self._thread = threading.Thread(
            target=self._derive, args=(read_slots,), name="snowvault-kdf"
        )
        self._thread.start()

    def _derive(self, read_slots: Callable[[], list[bytes]]) -> None:
        try:
            for data in read_slots():
                slot = KeySlot.from_bytes(data)
                if slot.type == "passphrase":
                    inputs = _scrypt_inputs(slot)
                    self._result = inputs, primitives.scrypt(self._passphrase.encode(), *inputs)
                    return
        except Exception:  # open_slot reads, derives and raises it again
            self._result = None

    def kek(self, passphrase: str, inputs: tuple[bytes, int, int, int]) -> bytes | None:
        """The derived key if it was derived from exactly these (waiting for it), else None."""
        self._thread.join()
        if self._result is None or passphrase != self._passphrase or inputs != self._result[0]:
            return None
        return self._result[1]


def _scrypt_inputs(slot: KeySlot) -> tuple[bytes, int, int, int]:
    kdf = slot.body["kdf"]
    return _unb64(kdf["salt"]), int(kdf["n"]), int(kdf["r"]), int(kdf["p"])


def _aad(repo_id: str, slot_id: str) -> bytes:
    return f"snowvault/keyslot/v1|{repo_id}|{slot_id}".encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode())


def passphrase_slot(
    secret: bytes, passphrase: str, repo_id: str, slot_id: str, kdf: KdfParams
) -> KeySlot:
    salt = primitives.random_bytes(16)
    kek = primitives.scrypt(passphrase.encode(), salt, kdf.n, kdf.r, kdf.p)
    wrapped = primitives.seal(kek, secret, _aad(repo_id, slot_id))
    body = {
        "kdf": {"name": "scrypt", "n": kdf.n, "r": kdf.r, "p": kdf.p, "salt": _b64(salt)},
        "wrapped": _b64(wrapped),
    }
    return KeySlot(slot_id, "passphrase", body)


def raw_slot(secret: bytes, raw_key: bytes, repo_id: str, slot_id: str) -> KeySlot:
    kek = primitives.hkdf(raw_key, b"snowvault/raw-slot/v1")
    wrapped = primitives.seal(kek, secret, _aad(repo_id, slot_id))
    return KeySlot(slot_id, "raw", {"wrapped": _b64(wrapped)})


def external_slot(secret: bytes, wrapper: KeyWrapper, repo_id: str, slot_id: str) -> KeySlot:
    wrapped = wrapper.wrap(secret, _aad(repo_id, slot_id))
    body = {"wrapper": wrapper.name, "params": wrapper.params(), "wrapped": _b64(wrapped)}
    return KeySlot(slot_id, "external", body)


def open_slot(
    slot: KeySlot,
    repo_id: str,
    *,
    passphrase: str | None = None,
    raw_key: bytes | None = None,
    wrapper: KeyWrapper | None = None,
    derived: Derivation | None = None,
) -> bytes | None:
    """The secret if this slot opens with what was given, else None (``derived``: a key
    derived ahead for the passphrase, used when it is this slot's)."""
    aad = _aad(repo_id, slot.id)
    try:
        if slot.type == "passphrase" and passphrase is not None:
            inputs = _scrypt_inputs(slot)
            kek = None if derived is None else derived.kek(passphrase, inputs)
            if kek is None:
                kek = primitives.scrypt(passphrase.encode(), *inputs)
            return primitives.open_sealed(kek, _unb64(slot.body["wrapped"]), aad)
        if slot.type == "raw" and raw_key is not None:
            kek = primitives.hkdf(raw_key, b"snowvault/raw-slot/v1")
            return primitives.open_sealed(kek, _unb64(slot.body["wrapped"]), aad)
        if slot.type == "external" and wrapper is not None:
            if slot.body.get("wrapper") != wrapper.name:
                return None
            return wrapper.unwrap(_unb64(slot.body["wrapped"]), aad, dict(slot.body["params"]))
    except primitives.AuthenticationFailed:
        return None
    return None
