"""Find the operation an HTTP request calls, from the service model alone.

rest-json: the method plus the ``requestUri`` template, matched against the request
target's DECODED segments (``wire.parse_target``: the same parse the SigV4 check and
the handlers use), so an encoded ``/`` stays inside its label; ``{Name+}`` labels are
greedy and join the remaining segments with ``/``. A trailing ``/`` is optional. When
several templates match, the most specific wins (literal segments beat labels, labels
beat greedy labels; literal query keys such as ``?delete`` count too). json protocol:
the ``X-Amz-Target`` header.

    >>> from snowvault.interfaces.api import model, wire
    >>> router = RestJsonRouter(model.load("backup"))
    >>> m = router.match("GET", wire.parse_target(b"/backup-vaults/my%2Fvault", b""))
    >>> (m.operation.name, m.labels)
    ('DescribeBackupVault', {'backupVaultName': 'my/vault'})

Query members: a key repeated, or given twice under two spellings (``nextToken`` and
``NextToken``), is refused with :class:`RejectedInput` unless the member is a list —
SigV4 sorts the query, so which copy came first is not something the caller signed.
An integer member outside the signed 64-bit range is refused the same way.

Depends on the compiled model and ``wire`` only; must not depend on HTTP frameworks.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from snowvault.interfaces.api import wire
from snowvault.interfaces.api.model import Member, Operation, ServiceModel

_LABEL = re.compile(r"^\{([^}]+?)(\+?)\}$")

_LITERAL, _ONE, _GREEDY = 3, 2, 1


class RejectedInput(Exception):
    """A located member is repeated or out of range; ``message`` names it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Match:
    operation: Operation
    labels: dict[str, str]


@dataclass(frozen=True, slots=True)
class _Route:
    operation: Operation
    parts: tuple[tuple[int, str], ...]  # (_LITERAL, text) | (_ONE, label) | (_GREEDY, label)
    query_keys: tuple[str, ...]
    specificity: tuple[int, ...]

    def match(self, segments: Sequence[str]) -> dict[str, str] | None:
        labels: dict[str, str] = {}
        for index, (kind, text) in enumerate(self.parts):
            if kind == _GREEDY:
                rest = segments[index:]
                if not rest:
                    return None
                labels[text] = "/".join(rest)
                return labels
            if index >= len(segments):
                return None
            segment = segments[index]
            if kind == _LITERAL:
                if segment != text:
                    return None
            elif not segment:
                return None
            else:
                labels[text] = segment
        return labels if len(segments) == len(self.parts) else None


def _compile(op: Operation) -> _Route:
    path, _, query = op.request_uri.partition("?")
    parts: list[tuple[int, str]] = []
    for segment in (s for s in path.split("/") if s):
        label = _LABEL.match(segment)
        if label is None:
            parts.append((_LITERAL, segment))
        else:
            parts.append((_GREEDY if label.group(2) else _ONE, label.group(1)))
    if any(kind == _GREEDY for kind, _ in parts[:-1]):
        raise ValueError(f"{op.name}: a greedy label must be the last segment")
    keys = tuple(k.partition("=")[0] for k in query.split("&") if k)
    score = tuple(kind for kind, _ in parts)
    return _Route(op, tuple(parts), keys, (*score, 0, len(keys)))


class RestJsonRouter:
    """Precompiled templates of one rest-json model, grouped by HTTP method."""

    def __init__(self, service: ServiceModel) -> None:
        # method -> first path segment -> candidate routes, most specific first; the ""
        # bucket holds templates starting with a label, tried after the literal bucket.
        self._routes: dict[str, dict[str, list[_Route]]] = {}
        for op in service.operations.values():
            route = _compile(op)
            first = route.parts[0][1] if route.parts and route.parts[0][0] == _LITERAL else ""
            self._routes.setdefault(op.method, {}).setdefault(first, []).append(route)
        for buckets in self._routes.values():
            labelled = buckets.get("", [])
            for key, routes in buckets.items():
                if key:
                    routes.extend(labelled)
                # Tuples compare segment by segment: a literal beats a label at that place.
                routes.sort(key=lambda r: r.specificity, reverse=True)

    def match(self, method: str, target: wire.Target) -> Match | None:
        """The operation for ``method`` and the parsed ``target``, or None."""
        buckets = self._routes.get(method.upper())
        if buckets is None:
            return None
        segments = target.segments
        if segments and not segments[-1]:
            segments = segments[:-1]  # the optional trailing "/"
        keys = {k for k, _ in target.query}
        first = segments[0] if segments else ""
        candidates = buckets.get(first) or buckets.get("", [])
        for route in candidates:
            if any(k not in keys for k in route.query_keys):
                continue
            labels = route.match(segments)
            if labels is not None:
                return Match(route.operation, labels)
        return None


class JsonTargetRouter:
    """json protocol: ``X-Amz-Target: TrentService.Encrypt`` names the operation."""

    def __init__(self, service: ServiceModel) -> None:
        prefix = service.target_prefix or ""
        self._targets = {f"{prefix}.{name}": op for name, op in service.operations.items()}

    def match(self, target: str) -> Operation | None:
        return self._targets.get(target)


def operation_name_from_target(target: str) -> str:
    """The operation part of an ``X-Amz-Target`` value, for error messages."""
    return target.rpartition(".")[2]


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where each input member of one operation travels, keyed for fast lookup."""

    uri: dict[str, Member]
    query: dict[str, Member]
    query_map: Member | None
    headers: dict[str, Member]
    body: tuple[Member, ...]


@functools.cache
def _layout(op: Operation) -> _Layout:
    members = op.input.members.values() if op.input is not None else ()
    query: dict[str, Member] = {}
    query_map = None
    for m in members:
        if m.location == "querystring" and m.shape.type == "map":
            query_map = m
        elif m.location == "querystring":
            # Accept the wire name and the member name in any case (nextToken, NextToken).
            query[m.name.lower()] = m
            query[m.location_name.lower()] = m
    return _Layout(
        uri={m.location_name: m for m in members if m.location == "uri"},
        query=query,
        query_map=query_map,
        headers={m.location_name.lower(): m for m in members if m.location == "header"},
        body=tuple(m for m in members if m.location is None),
    )


def gather_rest_input(
    op: Operation,
    labels: Mapping[str, str],
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
) -> dict[str, object]:
    """Input members found in the URI, query string and headers, still as strings.

    A list member collects every repetition of its query key; a map member of the query
    string takes the keys no other member claims. ``headers`` keys are lower case.
    """
    layout = _layout(op)
    found: dict[str, object] = {}
    for label, value in labels.items():
        member = layout.uri.get(label)
        if member is not None:
            found[member.name] = _in_range(member, value)
    leftovers: dict[str, str] = {}
    for key, value in query:
        member = layout.query.get(key.lower())
        if member is None:
            if key in leftovers:
                raise RejectedInput(f"The query parameter '{key}' is given more than once.")
            leftovers[key] = value
        elif member.shape.type == "list":
            cast(list[str], found.setdefault(member.name, [])).append(value)
        elif member.name in found:
            raise RejectedInput(
                f"The query parameter '{member.location_name}' is given more than once."
            )
        else:
            found[member.name] = _in_range(member, value)
    if layout.query_map is not None and leftovers:
        found[layout.query_map.name] = leftovers
    for name, member in layout.headers.items():
        if name in headers:
            found[member.name] = headers[name]
    return found


_INTEGRAL = frozenset({"integer", "long", "short", "byte"})
_DIGITS = re.compile(r"^[+-]?[0-9]+$")


def _in_range(member: Member, value: str) -> str:
    """``value`` unchanged, unless an integer member gets a number beyond 64 bits."""
    if (
        member.shape.type in _INTEGRAL
        and _DIGITS.match(value)
        and (len(value) > 20 or not wire.INT64_MIN <= int(value) <= wire.INT64_MAX)
    ):
        raise RejectedInput(
            f"The value of '{member.location_name}' is out of the 64-bit integer range."
        )
    return value
