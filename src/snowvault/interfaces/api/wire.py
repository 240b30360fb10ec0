"""The request as it arrived, parsed ONCE: target, JSON body, the caller's address.

Who may ask: anyone who can open a TCP connection — nothing here trusts the caller.
What it can reach: nothing; these functions only parse. What bounds it: the refusal
rules below, and the body limit the ASGI layer applies before :func:`json_document`.

**The target.** The path and query come from the raw bytes (ASGI ``raw_path`` and
``query_string``); the decoded form returned here is the ONLY one the SigV4 check, the
router and the handlers see. Whatever SigV4 would canonicalise differently from the
router is refused, not reinterpreted:

    >>> t = parse_target(b"/backup-vaults/my%2Fvault", b"maxResults=5&token=a%2Bb")
    >>> t.segments, t.query
    (('backup-vaults', 'my/vault'), (('maxResults', '5'), ('token', 'a+b')))
    >>> parse_target(b"/backup/plans/p/selections/..", b"")
    Traceback (most recent call last):
    ...
    snowvault.interfaces.api.wire.AmbiguousRequest: The request target is ambiguous: ...

Refused: dot segments (``.``, ``..``, also percent-encoded), empty segments (``//``;
a single trailing ``/`` is kept), a raw ``#``, a raw ``+`` in the query (``+`` is never
a space: a client that signed ``%2B`` sends ``%2B``), a ``%`` not followed by two hex
digits, escapes that are not UTF-8, NUL, empty query items, non-ASCII bytes.

**JSON bodies** (:func:`json_document`): at most :data:`MAX_JSON_DEPTH` levels, no
duplicate keys (refused — a second value never silently wins), no lone surrogates or
NUL in keys or strings, no NaN/Infinity, floats finite, integers within signed 64 bits.

**The caller's address** (:func:`source_ip`): the TCP peer; ``X-Forwarded-For`` counts
only when the peer is a trusted proxy, and then the rightmost hop that is not one.

Depends on the standard library only; must not depend on HTTP frameworks or other layers.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

MAX_JSON_DEPTH = 32
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_SURROGATE_OR_NUL = re.compile("[\ud800-\udfff\x00]")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class AmbiguousRequest(Exception):
    """The request could be read two ways; ``message`` says how."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MalformedJson(Exception):
    """The body is not a JSON document this API accepts; ``message`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Target:
    """The request target: the raw path as sent, its decoded segments, the decoded query.

    ``segments`` has one entry per ``/``-separated piece after the leading ``/`` (a
    trailing ``/`` gives a final ``""``); ``query`` holds (key, value) pairs sorted as
    SigV4 sorts them, so their order is part of what was signed.
    """

    raw_path: str
    segments: tuple[str, ...]
    query: tuple[tuple[str, str], ...]

    @property
    def path(self) -> str:
        """The decoded path, for messages only (an encoded ``/`` is not told apart)."""
        return "/" + "/".join(self.segments)


def _ambiguous(what: str) -> AmbiguousRequest:
    return AmbiguousRequest(f"The request target is ambiguous: {what}.")


def _decode(raw: bytes, where: str) -> str:
    if _ESCAPE.search(raw):
        raise _ambiguous(f"'%' in the {where} must be followed by two hex digits")
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == 0x25:  # '%'
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    try:
        text = out.decode("utf-8")
    except UnicodeDecodeError:
        raise _ambiguous(f"the {where} decodes to bytes that are not UTF-8") from None
    if "\x00" in text:
        raise _ambiguous(f"the {where} holds a NUL character")
    return text


def _ascii(raw: bytes, where: str) -> str:
    if any(b < 0x21 or b > 0x7E for b in raw):
        raise _ambiguous(f"the {where} must be printable ASCII (percent-encode the rest)")
    if b"#" in raw:
        raise _ambiguous(f"a raw '#' in the {where} (send '%23')")
    return raw.decode("ascii")


def parse_path(raw_path: bytes) -> tuple[str, tuple[str, ...]]:
    text = _ascii(raw_path, "path")
    if not text.startswith("/"):
        raise _ambiguous("the path must start with '/'")
    pieces = raw_path.split(b"/")[1:]
    segments: list[str] = []
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        if not piece and not last:
            raise _ambiguous("an empty path segment ('//') that SigV4 would collapse")
        decoded = _decode(piece, "path")
        if decoded in (".", ".."):
            raise _ambiguous(f"a dot segment ('{piece.decode()}') in the path")
        segments.append(decoded)
    return text, tuple(segments)


def parse_query(raw_query: bytes) -> tuple[tuple[str, str], ...]:
    if not raw_query:
        return ()
    _ascii(raw_query, "query string")
    if b"+" in raw_query:
        raise _ambiguous("a raw '+' in the query string (send '%2B' for '+', '%20' for ' ')")
    pairs: list[tuple[str, str]] = []
    for item in raw_query.split(b"&"):
        if not item:
            raise _ambiguous("an empty item ('&&') in the query string")
        key, _, value = item.partition(b"=")
        pairs.append((_decode(key, "query string"), _decode(value, "query string")))
    return tuple(sorted(pairs, key=lambda kv: (sigv4_encode(kv[0]), sigv4_encode(kv[1]))))


def sigv4_encode(text: str) -> str:
    """URI-encode as SigV4 does: everything but ``A-Za-z0-9-_.~``."""
    return quote(text, safe="-_.~")


def parse_target(raw_path: bytes, raw_query: bytes) -> Target:
    """The one parse of a request target; raises :class:`AmbiguousRequest`."""
    text, segments = parse_path(raw_path or b"/")
    return Target(text, segments, parse_query(raw_query))


# -- JSON ----------------------------------------------------------------------------------


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise MalformedJson(f"The key {_shown(key)} appears twice in one object.")
        out[key] = value
    return out


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MalformedJson(f"The number {text[:40]} is out of range.")
    return value


def _int(text: str) -> int:
    if len(text) > 20:
        raise MalformedJson(f"The integer {text[:40]}... is out of range.")
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise MalformedJson(f"The integer {text} is out of the 64-bit range.")
    return value


def _constant(name: str) -> Any:
    raise MalformedJson(f"{name} is not a JSON number.")


def _shown(text: str) -> str:
    return json.dumps(text[:40])


def json_document(body: bytes) -> dict[str, Any]:
    """The JSON object in ``body`` (``{}`` when blank); raises :class:`MalformedJson`."""
    if not body.strip():
        return {}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedJson("The body is not UTF-8.") from None
    try:
        document = json.loads(
            text,
            object_pairs_hook=_pairs,
            parse_float=_float,
            parse_int=_int,
            parse_constant=_constant,
        )
    except RecursionError:
        raise MalformedJson(f"The body nests deeper than {MAX_JSON_DEPTH} levels.") from None
    except ValueError as exc:
        if isinstance(exc, MalformedJson):
            raise
        raise MalformedJson(f"The body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise MalformedJson("The body must be a JSON object.")
    _check(document, 1)
    return document


def _check(value: Any, depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        raise MalformedJson(f"The body nests deeper than {MAX_JSON_DEPTH} levels.")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check(item, depth + 1)
    elif isinstance(value, str):
        _check_text(value)


def _check_text(text: str) -> None:
    found = _SURROGATE_OR_NUL.search(text)
    if found is not None:
        what = "NUL" if found.group() == "\x00" else "a lone surrogate"
        raise MalformedJson(f"A string holds {what} (U+{ord(found.group()):04X}).")


# -- the caller's address -----------------------------------------------------------------------


def networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """``trusted_proxies`` entries (addresses or CIDRs); raises ValueError on a bad one."""
    return tuple(ipaddress.ip_network(e.strip(), strict=False) for e in entries)


def _trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def source_ip(peer: str, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str:
    """The caller's address: ``peer`` unless it is a trusted proxy.

    Behind trusted proxies the ``X-Forwarded-For`` hops are read right to left and the
    first one that is not a trusted proxy is the caller; a malformed hop ends the walk
    at the last trusted address seen (a proxy never vouches for garbage).

    >>> nets = networks(["10.0.0.0/8"])
    >>> source_ip("127.0.0.1", ["6.6.6.6"], nets)
    '127.0.0.1'
    >>> source_ip("10.0.0.2", ["6.6.6.6, 192.0.2.7, 10.0.0.9"], nets)
    '192.0.2.7'
    """
    if not trusted or not _trusted(peer, trusted):
        return peer
    hops = [h.strip() for value in forwarded_for for h in value.split(",")]
    current = peer
    for hop in reversed(hops):
        try:
            address = str(ipaddress.ip_address(hop))
        except ValueError:
            return current
        current = address
        if not _trusted(address, trusted):
            return address
    return current
