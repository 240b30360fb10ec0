"""The MAC half of AWS Signature Version 4 (the canonical request is built by the API).

>>> len(sigv4_signature("secret", "20260101T000000Z", "20260101/us-east-1/backup",
...                     "canonical"))
64
"""

from __future__ import annotations

import functools
import hashlib
import hmac

ALGORITHM = "AWS4-HMAC-SHA256"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sigv4_signature(secret: str, amz_date: str, scope_prefix: str, canonical: str) -> str:
    """Hex signature for ``canonical`` under scope ``DATE/REGION/SERVICE``."""
    date, region, service = scope_prefix.split("/")
    scope = f"{scope_prefix}/aws4_request"
    to_sign = "\n".join((ALGORITHM, amz_date, scope, sha256_hex(canonical.encode())))
    key = _signing_key(secret, date, region, service)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


@functools.lru_cache(maxsize=1024)
def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The derived key changes once a day per key and scope: derive it once."""
    key = _hmac(f"AWS4{secret}".encode(), date)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return key


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def equal(a: str, b: str) -> bool:
    """Constant-time comparison of two signatures or digests."""
    return hmac.compare_digest(a.encode(), b.encode())
