"""SigV4: requests signed by botocore's own SigV4Auth verify; every tampering fails."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from snowvault.interfaces.api import sigv4
from snowvault.interfaces.api import wire as wire_parse

PRINCIPAL = sigv4.Principal(
    "AKIDEXAMPLE",
    "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    "123456789012",
    "arn:aws:iam::123456789012:user/alice",
)


def lookup(key: str) -> sigv4.Principal | None:
    return PRINCIPAL if key == PRINCIPAL.access_key_id else None


def sign(
    method: str = "GET",
    url: str = "http://127.0.0.1:8080/backup-vaults/",
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    secret: str = PRINCIPAL.secret_access_key,
    service: str = "backup",
    region: str = "eu-west-1",
) -> tuple[sigv4.SignedRequest, datetime]:
    """Sign like boto3 does and return the request as the server would see it."""
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    SigV4Auth(Credentials(PRINCIPAL.access_key_id, secret), service, region).add_auth(request)
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    wire_headers = [("host", parts.netloc)]
    wire_headers += [(k.lower(), str(v)) for k, v in prepared.headers.items()]
    signed_at = datetime.strptime(prepared.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    query = wire_parse.parse_query(parts.query.encode())
    on_wire = sigv4.SignedRequest(method, parts.path, query, wire_headers, body or b"")
    return on_wire, signed_at.replace(tzinfo=UTC)


def test_botocore_signature_verifies_with_scope() -> None:
    wire, at = sign()
    verified = sigv4.verify(wire, lookup, at + timedelta(seconds=3))
    assert (verified.region, verified.service) == ("eu-west-1", "backup")
    assert verified.principal.account_id == "123456789012"
    assert verified.signed_at == at


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/backup-vaults/my%20vault%2Fx%C3%A4",  # encoded twice in the CR
        "http://127.0.0.1:8080/backup-jobs/?maxResults=5&nextToken=a%2Bb%3D%3D&state=RUNNING",
        "http://127.0.0.1:8080/a/./b/../c//d/",
        "http://127.0.0.1:8080/x?b=2&a=1&a=0&empty=&flag",
        "http://localhost/tags/arn%3Aaws%3Abackup%3Aus-east-1%3A123456789012%3Abackup-vault%3Av",
    ],
)
def test_paths_and_queries_canonicalise_like_botocore(url: str) -> None:
    wire, at = sign(url=url)
    assert sigv4.verify(wire, lookup, at).service == "backup"


def test_body_and_extra_headers_are_covered() -> None:
    body = b'{"BackupVaultTags": {"k": "v"}}'
    headers = {"Content-Type": "application/json", "X-Amz-Target": "  Trent  Service.X "}
    wire, at = sign("PUT", "http://127.0.0.1:1/backup-vaults/v", body, headers)
    assert sigv4.verify(wire, lookup, at).principal is PRINCIPAL

    tampered = replace(wire, body=body.replace(b'"v"', b'"w"'))
    with pytest.raises(sigv4.AuthError) as err:
        sigv4.verify(tampered, lookup, at)
    assert (err.value.code, err.value.status) == ("InvalidSignatureException", 403)

    other_header = replace(
        wire,
        headers=[(k, "application/xml" if k == "content-type" else v) for k, v in wire.headers],
    )
    with pytest.raises(sigv4.AuthError, match="does not match"):
        sigv4.verify(other_header, lookup, at)


def test_wrong_secret_is_invalid_signature() -> None:
    wire, at = sign(secret="not-the-secret")
    with pytest.raises(sigv4.AuthError) as err:
        sigv4.verify(wire, lookup, at)
    assert err.value.code == "InvalidSignatureException"


def test_tampered_path_or_method_fails() -> None:
    wire, at = sign()
    for bad in (replace(wire, raw_path="/backup-vaults/x"), replace(wire, method="DELETE")):
        with pytest.raises(sigv4.AuthError, match="does not match"):
            sigv4.verify(bad, lookup, at)


def test_unknown_access_key() -> None:
    wire, at = sign()
    with pytest.raises(sigv4.AuthError) as err:
        sigv4.verify(wire, lambda key: None, at)
    assert (err.value.code, err.value.status) == ("UnrecognizedClientException", 403)


@pytest.mark.parametrize(
    ("offset", "needle"),
    [(timedelta(minutes=16), "Signature expired"), (-timedelta(minutes=16), "not yet current")],
)
def test_clock_skew_beyond_15_minutes(offset: timedelta, needle: str) -> None:
    wire, at = sign()
    sigv4.verify(wire, lookup, at + offset * 14 / 16)  # inside the window
    with pytest.raises(sigv4.AuthError, match=needle) as err:
        sigv4.verify(wire, lookup, at + offset)
    assert (err.value.code, err.value.status) == ("InvalidSignatureException", 403)


def test_missing_authorization() -> None:
    wire, at = sign()
    bare = replace(wire, headers=[(k, v) for k, v in wire.headers if k != "authorization"])
    with pytest.raises(sigv4.AuthError) as err:
        sigv4.verify(bare, lookup, at)
    assert (err.value.code, err.value.status) == ("MissingAuthenticationTokenException", 403)


def test_malformed_authorization_is_incomplete() -> None:
    wire, at = sign()
    garbled = replace(
        wire,
        headers=[
            (k, "AWS4-HMAC-SHA256 Credential=x" if k == "authorization" else v)
            for k, v in wire.headers
        ],
    )
    with pytest.raises(sigv4.AuthError) as err:
        sigv4.verify(garbled, lookup, at)
    assert (err.value.code, err.value.status) == ("IncompleteSignatureException", 400)


def test_service_scope_can_be_required() -> None:
    wire, at = sign(service="kms")
    with pytest.raises(sigv4.AuthError, match="correct service"):
        sigv4.verify(wire, lookup, at, expected_service="backup")
    assert sigv4.verify(wire, lookup, at, expected_service="kms").service == "kms"


def test_content_sha256_header_must_match_the_body() -> None:
    body = b"{}"
    wire, at = sign("POST", "http://h/x", body, {"X-Amz-Content-SHA256": "0" * 64})
    with pytest.raises(sigv4.AuthError, match="x-amz-content-sha256"):
        sigv4.verify(wire, lookup, at)
    unsigned, at = sign("POST", "http://h/x", body, {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    with pytest.raises(sigv4.AuthError, match="unsigned payloads are not accepted"):
        sigv4.verify(unsigned, lookup, at)


def test_principal_repr_hides_the_secret() -> None:
    assert PRINCIPAL.secret_access_key not in repr(PRINCIPAL)


def test_canonical_path_matches_botocore_double_encoding() -> None:
    assert sigv4.canonical_path("/backup-vaults/a%2Fb") == "/backup-vaults/a%252Fb"
    assert sigv4.canonical_path("") == "/"
    assert sigv4.canonical_path("/a/../../b/./c/") == "/b/c/"
