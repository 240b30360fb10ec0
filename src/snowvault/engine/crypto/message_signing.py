"""The notification signing key: RSA-SHA256 signatures and the certificate that checks them.

    key = SigningKey.generate("snowvault notifications", now)   # RSA 2048, self-signed
    key.private_pem(), key.cert_pem                         # to keep / to serve at SigningCertURL
    key = SigningKey.load(private_pem, cert_pem)
    signature = key.sign(b"Message\\n...")                    # PKCS#1 v1.5, SHA-256
    verify(cert_pem, signature, data)                       # raises InvalidSignature
    sha256_hex(data)                                        # CloudTrail's file hashes

SNS's SignatureVersion 2 is exactly this: the receiver fetches the certificate from
SigningCertURL and checks the base64 signature over the canonical string. The
certificate is self-signed (no CA vouches for a self-hosted server): receivers pin it,
or trust it because they fetched it from the endpoint they configured.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

__all__ = ["InvalidSignature", "SigningKey", "sha256_hex", "verify"]

KEY_BITS = 2048
VALID_DAYS = 3650


@dataclass(frozen=True)
class SigningKey:
    _key: rsa.RSAPrivateKey
    cert_pem: bytes

    @classmethod
    def generate(cls, common_name: str, now: datetime) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        start = now - timedelta(days=1)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + timedelta(days=VALID_DAYS))
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert.public_bytes(serialization.Encoding.PEM))

    @classmethod
    def load(cls, private_pem: bytes, cert_pem: bytes) -> SigningKey:
        key = serialization.load_pem_private_key(private_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the notification signing key is not an RSA key")
        x509.load_pem_x509_certificate(cert_pem)  # malformed -> ValueError
        return cls(key, cert_pem)

    def private_pem(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def __repr__(self) -> str:
        return "SigningKey(<private>)"


def verify(cert_pem: bytes, signature: bytes, data: bytes) -> None:
    """Raise :class:`InvalidSignature` unless ``signature`` is the certificate key's
    RSA-SHA256 signature of ``data``."""
    public = x509.load_pem_x509_certificate(cert_pem).public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        raise InvalidSignature("the certificate does not hold an RSA key")
    public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())


def sha256_hex(data: bytes) -> str:
    """SHA-256 of ``data`` as hex (the hash CloudTrail digest files name)."""
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    return digest.finalize().hex()
