"""Verify AWS Signature Version 4 (header form) exactly as botocore's SigV4Auth signs.

The canonical request is rebuilt from what arrived on the wire:

    METHOD
    canonical path     raw path, dot segments and empty segments removed, then
                       URI-encoded again (safe "/~"): non-S3 services encode twice
                       (the API refuses dot and empty segments before this runs, so
                       the removal never changes what the router sees)
    canonical query    the DECODED (key, value) pairs the handlers get, each encoded
                       (safe "-_.~") and sorted
    canonical headers  the SignedHeaders, lower case, values whitespace-trimmed, joined
    signed headers
    payload hash       X-Amz-Content-SHA256 if sent, else SHA-256 of the body

Two steps, so nothing costly happens for a stranger: :func:`begin` checks what the
headers alone can tell (Authorization well formed, scope, date, skew, a known key, the
headers that select behaviour signed and not repeated) BEFORE the body is read;
:func:`finish` then checks the signature over the body. :func:`verify` does both.
Headers that must be signed when present: ``host`` (always), the date header used,
``content-type``, ``content-md5`` and every ``x-amz-*`` header (``x-amz-target``
chooses the operation of a json-protocol service). ``UNSIGNED-PAYLOAD`` is refused:
every body this API reads is covered by the signature.

The secret comes from an injected ``lookup_secret(access_key_id) -> Principal | None``
and ``now`` is an argument; the signature is compared in constant time. Failures raise
:class:`AuthError` carrying the AWS error code and HTTP status.

Depends on the standard library only; must not depend on HTTP frameworks or other layers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote

from snowvault.engine.crypto import sigv4 as crypto_sigv4

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = timedelta(minutes=15)
_MUST_SIGN = frozenset({"host", "content-type", "content-md5"})
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_AMZ_DATE_RE = re.compile(r"^\d{8}T\d{6}Z$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<cred>[^,\s]+)\s*,\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+)\s*,\s*Signature=(?P<sig>[0-9a-fA-F]+)\s*$"
)


@dataclass(frozen=True)
class Principal:
    """Who holds an access key: the key pair, the account and the principal's ARN."""

    access_key_id: str
    secret_access_key: str
    account_id: str
    arn: str

    def __repr__(self) -> str:  # never print the secret
        return f"Principal({self.access_key_id!r}, account={self.account_id!r}, arn={self.arn!r})"


LookupSecret = Callable[[str], Principal | None]


@dataclass(frozen=True)
class Verified:
    """A request whose signature checked out, and the scope it was signed for."""

    principal: Principal
    region: str
    service: str
    signed_at: datetime


class AuthError(Exception):
    """Authentication failed; ``code`` is the AWS error code, ``status`` the HTTP status."""

    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """The parts of an HTTP request SigV4 covers, as they arrived.

    ``headers`` holds (lower-case name, value) pairs in arrival order; ``raw_path`` is
    percent-encoded as sent and ``query`` holds the DECODED (key, value) pairs (the
    ones the handlers get; see ``wire.parse_target``).
    """

    method: str
    raw_path: str
    query: Sequence[tuple[str, str]]
    headers: Sequence[tuple[str, str]]
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class _Authorization:
    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


@dataclass(frozen=True, slots=True)
class Pending:
    """A request whose headers checked out; :func:`finish` checks the signature."""

    principal: Principal
    auth: _Authorization
    amz_date: str
    signed_at: datetime
    headers: Mapping[str, list[str]]

    @property
    def region(self) -> str:
        return self.auth.region

    @property
    def service(self) -> str:
        return self.auth.service


def verify(
    request: SignedRequest,
    lookup_secret: LookupSecret,
    now: datetime,
    expected_service: str | None = None,
) -> Verified:
    """Check ``request``'s signature; raise :class:`AuthError` when it does not hold."""
    return finish(begin(request.headers, lookup_secret, now, expected_service), request)


def begin(
    header_pairs: Sequence[tuple[str, str]],
    lookup_secret: LookupSecret,
    now: datetime,
    expected_service: str | None = None,
) -> Pending:
    """Everything the headers alone decide, before any body byte is read."""
    headers = _header_map(header_pairs)
    auth = _parse_authorization(headers)
    if expected_service is not None and auth.service != expected_service:
        raise AuthError(
            "InvalidSignatureException",
            f"Credential should be scoped to correct service: '{expected_service}'.",
        )
    signed_at, amz_date = _request_time(headers, auth)
    _check_skew(signed_at, amz_date, now)
    _check_signed_headers(headers, auth)
    principal = lookup_secret(auth.access_key_id)
    if principal is None:
        raise AuthError(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    return Pending(principal, auth, amz_date, signed_at, headers)


def finish(pending: Pending, request: SignedRequest) -> Verified:
    """The signature over ``request`` (its body read by now) under ``pending``'s key."""
    auth = pending.auth
    payload = _payload_hash(pending.headers, request.body)
    canonical = canonical_request(request, pending.headers, auth.signed_headers, payload)
    expected = signature(pending.principal.secret_access_key, pending.amz_date, auth, canonical)
    if not crypto_sigv4.equal(expected, auth.signature.lower()):
        raise AuthError(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method.",
        )
    return Verified(pending.principal, auth.region, auth.service, pending.signed_at)


def _check_signed_headers(headers: Mapping[str, list[str]], auth: _Authorization) -> None:
    """Headers that select behaviour are signed and sent once."""
    signed = set(auth.signed_headers)
    date_header = "x-amz-date" if "x-amz-date" in headers else "date"
    for name, values in headers.items():
        must = name in _MUST_SIGN or name.startswith("x-amz-") or name == date_header
        if must and name not in signed:
            raise AuthError(
                "InvalidSignatureException",
                f"The '{name}' header must be signed (add it to SignedHeaders).",
            )
        if len(values) > 1 and (must or name in signed or name == "authorization"):
            raise AuthError(
                "InvalidSignatureException",
                f"The '{name}' header is sent more than once; send it once.",
                400,
            )


def _header_map(pairs: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        out.setdefault(name.lower(), []).append(value)
    return out


def _parse_authorization(headers: Mapping[str, list[str]]) -> _Authorization:
    values = headers.get("authorization")
    if not values:
        raise AuthError("MissingAuthenticationTokenException", "Missing Authentication Token")
    found = _AUTH.match(values[0].strip())
    if found is None:
        raise AuthError(
            "IncompleteSignatureException",
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' "
            f"with the {ALGORITHM} algorithm.",
            400,
        )
    parts = found.group("cred").split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise AuthError(
            "IncompleteSignatureException",
            "Credential must have the form <key>/<date>/<region>/<service>/aws4_request.",
            400,
        )
    signed = tuple(found.group("signed").lower().split(";"))
    if "host" not in signed:
        raise AuthError("InvalidSignatureException", "'Host' must be a signed header.")
    return _Authorization(parts[0], parts[1], parts[2], parts[3], signed, found.group("sig"))


def _request_time(headers: Mapping[str, list[str]], auth: _Authorization) -> tuple[datetime, str]:
    """The signing time and its ``YYYYMMDDTHHMMSSZ`` text (X-Amz-Date, else Date)."""
    try:
        if "x-amz-date" in headers:
            text = headers["x-amz-date"][0].strip()
            when = _parse_amz_date(text)
        elif "date" in headers:
            when = parsedate_to_datetime(headers["date"][0]).astimezone(UTC)
            text = when.strftime(_AMZ_DATE)
        else:
            raise ValueError("no date")
    except (ValueError, TypeError, IndexError):
        raise AuthError(
            "IncompleteSignatureException",
            "Authorization requires a valid X-Amz-Date or Date header.",
            400,
        ) from None
    if auth.date != text[:8]:
        raise AuthError(
            "InvalidSignatureException",
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
            f"date from HTTP: '{auth.date}' != '{text[:8]}', from '{text}'.",
        )
    return when, text


def _parse_amz_date(text: str) -> datetime:
    if _AMZ_DATE_RE.match(text) is None:
        raise ValueError(text)
    year, month, day = int(text[0:4]), int(text[4:6]), int(text[6:8])
    return datetime(
        year, month, day, int(text[9:11]), int(text[11:13]), int(text[13:15]), tzinfo=UTC
    )


def _check_skew(signed_at: datetime, amz_date: str, now: datetime) -> None:
    stamp = now.astimezone(UTC).strftime(_AMZ_DATE)
    if signed_at < now - MAX_SKEW:
        earliest = (now - MAX_SKEW).astimezone(UTC).strftime(_AMZ_DATE)
        raise AuthError(
            "InvalidSignatureException",
            f"Signature expired: {amz_date} is now earlier than {earliest} ({stamp} - 15 min.)",
        )
    if signed_at > now + MAX_SKEW:
        latest = (now + MAX_SKEW).astimezone(UTC).strftime(_AMZ_DATE)
        raise AuthError(
            "InvalidSignatureException",
            f"Signature not yet current: {amz_date} is still later than {latest} "
            f"({stamp} + 15 min.)",
        )


def _payload_hash(headers: Mapping[str, list[str]], body: bytes) -> str:
    actual = crypto_sigv4.sha256_hex(body)
    claimed = headers.get("x-amz-content-sha256")
    if not claimed:
        return actual
    value = claimed[0].strip()
    if not _HEX64.match(value):
        raise AuthError(
            "InvalidSignatureException",
            "The 'x-amz-content-sha256' header must be the body's SHA-256 (unsigned "
            "payloads are not accepted here).",
        )
    if not crypto_sigv4.equal(value, actual):
        raise AuthError(
            "InvalidSignatureException",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        )
    return value


def canonical_request(
    request: SignedRequest,
    headers: Mapping[str, list[str]],
    signed_headers: Sequence[str],
    payload_hash: str,
) -> str:
    lines = [
        request.method.upper(),
        canonical_path(request.raw_path),
        canonical_query(request.query),
    ]
    for name in sorted(set(signed_headers)):
        values = headers.get(name, [])
        lines.append(f"{name}:{','.join(' '.join(v.split()) for v in values)}")
    lines.append("")
    lines.append(";".join(sorted(set(signed_headers))))
    lines.append(payload_hash)
    return "\n".join(lines)


def canonical_path(raw_path: str) -> str:
    """Dot segments and empty segments removed, then encoded once more (safe ``/~``)."""
    if not raw_path:
        return "/"
    kept: list[str] = []
    for segment in raw_path.split("/"):
        if segment == "..":
            if kept:
                kept.pop()
        elif segment and segment != ".":
            kept.append(segment)
    path = "/" + "/".join(kept) if raw_path.startswith("/") else "/".join(kept)
    if raw_path.endswith("/") and kept:
        path += "/"
    return quote(path, safe="/~")


def canonical_query(pairs: Sequence[tuple[str, str]]) -> str:
    """The decoded ``pairs`` encoded (safe ``-_.~``) and sorted, joined with ``&``."""
    encoded = sorted((_encode(k), _encode(v)) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


def signature(secret: str, amz_date: str, auth: _Authorization, canonical: str) -> str:
    scope = f"{auth.date}/{auth.region}/{auth.service}"
    return crypto_sigv4.sigv4_signature(secret, amz_date, scope, canonical)
