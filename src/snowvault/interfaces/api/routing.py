"""Find the operation an HTTP request calls, from the service model alone.

rest-json: the method plus the ``requestUri`` template, matched against the RAW path
(percent-encoded, as sent), each segment decoded separately so an encoded ``/`` stays
inside its label; ``{Name+}`` labels are greedy. When several templates match, the most
specific wins (literal segments beat labels, labels beat greedy labels; literal query
keys such as ``?delete`` count too). json protocol: the ``X-Amz-Target`` header.

    >>> from snowvault.interfaces.api import model
    >>> router = RestJsonRouter(model.load("backup"))
    >>> m = router.match("GET", "/backup-vaults/my%2Fvault", {})
    >>> (m.operation.name, m.labels)
    ('DescribeBackupVault', {'backupVaultName': 'my/vault'})

Depends on the compiled model only; must not depend on HTTP frameworks.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast
from urllib.parse import unquote

from snowvault.interfaces.api.model import Member, Operation, ServiceModel

_LABEL = re.compile(r"^\{([^}]+?)(\+?)\}$")
_SLASHES = re.compile("/{2,}")


@dataclass(frozen=True, slots=True)
class Match:
    operation: Operation
    labels: dict[str, str]


@dataclass(frozen=True, slots=True)
class _Route:
    operation: Operation
    regex: re.Pattern[str]
    label_names: tuple[str, ...]
    query_keys: tuple[str, ...]
    specificity: tuple[int, ...]


def _compile(op: Operation) -> _Route:
    path, _, query = op.request_uri.partition("?")
    parts: list[str] = []
    names: list[str] = []
    score: list[int] = []
    for segment in (s for s in path.split("/") if s):
        label = _LABEL.match(segment)
        if label is None:
            parts.append(re.escape(segment))
            score.append(3)
        elif label.group(2):
            parts.append("(.+?)")
            names.append(label.group(1))
            score.append(1)
        else:
            parts.append("([^/]+)")
            names.append(label.group(1))
            score.append(2)
    keys = tuple(k.partition("=")[0] for k in query.split("&") if k)
    regex = re.compile("^/" + "/".join(parts) + "/?$")
    return _Route(op, regex, tuple(names), keys, (*score, 0, len(keys)))


class RestJsonRouter:
    """Precompiled templates of one rest-json model, grouped by HTTP method."""

    def __init__(self, service: ServiceModel) -> None:
        # method -> first path segment -> candidate routes, most specific first; the ""
        # bucket holds templates starting with a label, tried after the literal bucket.
        self._routes: dict[str, dict[str, list[_Route]]] = {}
        for op in service.operations.values():
            route = _compile(op)
            first = _first_segment(op.request_uri)
            first = "" if _LABEL.match(first) else first
            self._routes.setdefault(op.method, {}).setdefault(first, []).append(route)
        for buckets in self._routes.values():
            labelled = buckets.get("", [])
            for key, routes in buckets.items():
                if key:
                    routes.extend(labelled)
                # Tuples compare segment by segment: a literal beats a label at that place.
                routes.sort(key=lambda r: r.specificity, reverse=True)

    def match(self, method: str, raw_path: str, query: Mapping[str, object]) -> Match | None:
        """The operation for ``method`` and ``raw_path`` (no query string), or None."""
        path = _SLASHES.sub("/", raw_path) or "/"
        buckets = self._routes.get(method.upper())
        if buckets is None:
            return None
        candidates = buckets.get(_first_segment(path)) or buckets.get("", [])
        for route in candidates:
            found = route.regex.match(path)
            if found is None or any(k not in query for k in route.query_keys):
                continue
            labels = {
                name: _decode(value)
                for name, value in zip(route.label_names, found.groups(), strict=True)
            }
            return Match(route.operation, labels)
        return None


def _first_segment(path: str) -> str:
    return path.split("?", 1)[0].lstrip("/").split("/", 1)[0]


def _decode(raw: str) -> str:
    return "/".join(unquote(piece) for piece in raw.split("/"))


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
            found[member.name] = value
    leftovers: dict[str, str] = {}
    for key, value in query:
        member = layout.query.get(key.lower())
        if member is None:
            leftovers.setdefault(key, value)
        elif member.shape.type == "list":
            cast(list[str], found.setdefault(member.name, [])).append(value)
        else:
            found.setdefault(member.name, value)
    if layout.query_map is not None and leftovers:
        found[layout.query_map.name] = leftovers
    for name, member in layout.headers.items():
        if name in headers:
            found[member.name] = headers[name]
    return found
