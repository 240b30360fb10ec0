"""What an agent's presigned pack PUT lets its holder do, judged as the store judges it
(helper Q's probe): moto checks no signatures, so a SigV4 query-signature verifier
written here from the algorithm (checked against the URL botocore signs) stands in for
S3, and tampered requests are put to it.

Held: the URL is one PUT of one derived key in one bucket, for 15 minutes; another key,
another bucket, another method, a subresource added to the query (``?retention``,
``?acl``, ``?uploads``, ``?tagging``, an UploadPart), another or a dropped
``Content-MD5`` or ``If-None-Match``, a longer ``X-Amz-Expires`` or a moved
``X-Amz-Date`` do not verify; after the expiry the original does not either. The body
is pinned by its Content-MD5 (the store checks it), so another Content-Length cannot
carry other bytes.

The server's presign also pins the pack's SHA-256, which is its name
(``x-amz-checksum-sha256``, signed; the store answers BadDigest to other bytes): before,
an agent could upload bytes whose SHA-256 was not the pack id it named, the commit
(size, MD5, sealed header) indexed it, and ``check --read-data`` reported the vault
damaged, a false integrity alarm any enrolled host could raise in its vault.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import pytest

from snowvault.control.services import agents
from snowvault.engine import keyed_packs, packs
from snowvault.engine.backends import s3
from snowvault.engine.backends.memory import MemoryBackend
from snowvault.engine.crypto import agent_blobs
from snowvault.engine.repository import Repository

PACK_BYTES = b"sealed pack bytes"
PACK = hashlib.sha256(PACK_BYTES).hexdigest()
SECRET = "probe-secret"


def _backend() -> s3.S3Backend:
    return s3.S3Backend(
        "vaults", "tenant-a/v1", endpoint_url="http://127.0.0.1:9", region="us-east-1",
        access_key_id="AKIDPROBE", secret_access_key=SECRET,
    )  # fmt: skip


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def verifies(method: str, url: str, headers: dict[str, str], now: datetime) -> bool:
    """Whether S3 would accept this presigned request's signature and time (SigV4 query
    authentication: the signature covers the method, the path, every query parameter
    but the signature, and the headers named in X-Amz-SignedHeaders; the payload is
    UNSIGNED-PAYLOAD)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    given = dict(query)
    signed = given["X-Amz-SignedHeaders"].split(";")
    lower = {k.lower(): v.strip() for k, v in headers.items()} | {"host": parts.netloc}
    if any(name not in lower for name in signed):
        return False
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, v in sorted(query)
        if k != "X-Amz-Signature"
    )
    canonical = "\n".join(
        [
            method,
            parts.path,
            canonical_query,
            "".join(f"{name}:{lower[name]}\n" for name in signed),
            ";".join(signed),
            "UNSIGNED-PAYLOAD",
        ]
    )
    amz_date = given["X-Amz-Date"]
    _key_id, day, region, service, _term = given["X-Amz-Credential"].split("/")
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            f"{day}/{region}/{service}/aws4_request",
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = _hmac(("AWS4" + SECRET).encode(), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    good = hmac.compare_digest(_hmac(key, to_sign).hex(), given["X-Amz-Signature"])
    signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    in_time = signed_at <= now <= signed_at + timedelta(seconds=int(given["X-Amz-Expires"]))
    return good and in_time


def _issued() -> tuple[str, dict[str, str], datetime]:
    md5 = agent_blobs.content_md5(PACK_BYTES)
    signed = _backend().presign_put(packs.pack_name(PACK), md5, agents.PRESIGN_SECONDS)
    amz_date = dict(parse_qsl(urlsplit(signed.url).query))["X-Amz-Date"]
    at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return signed.url, dict(signed.headers), at


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=path))


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True)) | changes
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def test_the_issued_url_verifies_and_every_header_the_agent_sends_is_signed() -> None:
    url, headers, at = _issued()
    assert verifies("PUT", url, headers, at + timedelta(seconds=1))
    signed = dict(parse_qsl(urlsplit(url).query))["X-Amz-SignedHeaders"].split(";")
    assert {h.lower() for h in headers} <= set(signed)
    assert urlsplit(url).path == f"/vaults/tenant-a/v1/data/{PACK[:2]}/{PACK}"


OTHER = "cd" * 32
HERE = f"data/{PACK[:2]}/{PACK}"
NO_MD5, NO_MATCH = {"Content-MD5": None}, {"If-None-Match": None}
TAMPERED: dict[str, tuple[str, str | None, dict[str, str], dict[str, str | None]]] = {
    # name: (method, another path, query changes, header changes (None: dropped))
    "another pack key": ("PUT", f"/vaults/tenant-a/v1/data/cd/{OTHER}", {}, {}),
    "the vault's config": ("PUT", "/vaults/tenant-a/v1/config", {}, {}),
    "another tenant's prefix": ("PUT", f"/vaults/tenant-b/v1/{HERE}", {}, {}),
    "another bucket": ("PUT", f"/other/tenant-a/v1/{HERE}", {}, {}),
    "GET": ("GET", None, {}, {}),
    "DELETE": ("DELETE", None, {}, {}),
    "another Content-MD5": ("PUT", None, {}, {"Content-MD5": agent_blobs.content_md5(b"x")}),
    "no Content-MD5": ("PUT", None, {}, NO_MD5),
    "no If-None-Match": ("PUT", None, {}, NO_MATCH),
    "If-None-Match of a tag": ("PUT", None, {}, {"If-None-Match": '"abc"'}),
    "a week's expiry": ("PUT", None, {"X-Amz-Expires": "604800"}, {}),
    "a later X-Amz-Date": ("PUT", None, {"X-Amz-Date": "20991231T000000Z"}, {}),
    "?retention": ("PUT", None, {"retention": ""}, {}),
    "?legal-hold": ("PUT", None, {"legal-hold": ""}, {}),
    "?acl": ("PUT", None, {"acl": ""}, {}),
    "?tagging": ("PUT", None, {"tagging": ""}, {}),
    "?uploads (multipart)": ("POST", None, {"uploads": ""}, {}),
    "an UploadPart": ("PUT", None, {"partNumber": "1", "uploadId": "x"}, {}),
}


@pytest.mark.parametrize("tamper", sorted(TAMPERED))
def test_a_tampered_request_does_not_verify(tamper: str) -> None:
    url, headers, at = _issued()
    method, path, query, changes = TAMPERED[tamper]
    url2 = _with_path(url, path) if path else url
    url2 = _with_query(url2, **query) if query else url2
    headers2 = {k: v for k, v in (headers | changes).items() if v is not None}
    assert (method, url2, headers2) != ("PUT", url, headers)
    assert not verifies(method, url2, headers2, at + timedelta(seconds=1))


def test_the_url_expires_after_fifteen_minutes() -> None:
    url, headers, at = _issued()
    assert agents.PRESIGN_SECONDS <= 15 * 60
    assert verifies("PUT", url, headers, at + timedelta(seconds=agents.PRESIGN_SECONDS))
    assert not verifies("PUT", url, headers, at + timedelta(seconds=agents.PRESIGN_SECONDS + 1))


def test_the_servers_presign_pins_the_packs_sha256_which_is_its_name() -> None:
    """Through the server's own presign of an agent's pack (a vault on a memory store for
    the pack-key record, the S3 backend only signing)."""
    repo = Repository.init(MemoryBackend("presign-sha256"), raw_key=b"r" * 32)
    key = keyed_packs.PackKey(b"k" * 32, keyed_packs.agent_scope("123456789012", "host-1"))
    md5 = agent_blobs.content_md5(PACK_BYTES)
    upload = agents.PackUpload(PACK, len(PACK_BYTES), md5)
    [signed] = agents._presign(repo, _backend(), key, [upload])
    query = dict(parse_qsl(urlsplit(signed.url).query))
    assert "x-amz-checksum-sha256" in query["X-Amz-SignedHeaders"].split(";")
    want = base64.b64encode(bytes.fromhex(PACK)).decode()
    assert {k.lower(): v for k, v in signed.headers.items()}["x-amz-checksum-sha256"] == want
