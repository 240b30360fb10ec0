"""The KMS ciphertext blob: it names key and version, and every byte of it is authenticated."""

from __future__ import annotations

import pytest

from snowvault.engine.crypto import AuthenticationFailed, kms


def test_header_and_round_trip() -> None:
    material = kms.new_material()
    blob = kms.encrypt(material, "0b1c-key", 7, b"payload", b"ctx")
    assert kms.header(blob) == ("0b1c-key", 7)
    assert kms.decrypt(material, blob, b"ctx") == b"payload"


def test_the_header_is_authenticated() -> None:
    material = kms.new_material()
    blob = bytearray(kms.encrypt(material, "k", 1, b"payload", b""))
    version_at = len(kms.MAGIC) + 1 + 1 + 3  # last byte of the version
    blob[version_at] ^= 2
    with pytest.raises(AuthenticationFailed):
        kms.decrypt(material, bytes(blob), b"")


@pytest.mark.parametrize(
    "blob", [b"", b"SVK1", b"XXXX\x01k\x00\x00\x00\x01" + b"\x00" * 40, b"SVK1\x05k\x00\x00"]
)
def test_malformed_blobs_are_invalid(blob: bytes) -> None:
    with pytest.raises(kms.InvalidBlob):
        kms.header(blob)


def test_context_order_does_not_matter_but_content_does() -> None:
    assert kms.context_bytes({"a": "1", "b": "2"}) == kms.context_bytes({"b": "2", "a": "1"})
    assert kms.context_bytes(None) == kms.context_bytes({}) == b""
    material = kms.new_material()
    blob = kms.encrypt(material, "k", 1, b"x", kms.context_bytes({"a": "1"}))
    with pytest.raises(AuthenticationFailed):
        kms.decrypt(material, blob, kms.context_bytes({"a": "2"}))


def test_material_box_binds_key_and_version() -> None:
    box = kms.MaterialBox(b"r" * 32)
    material = kms.new_material()
    sealed = box.seal(material, "arn:k", 1)
    assert box.open(sealed, "arn:k", 1) == material
    for arn, version in (("arn:other", 1), ("arn:k", 2)):
        with pytest.raises(AuthenticationFailed):
            box.open(sealed, arn, version)
