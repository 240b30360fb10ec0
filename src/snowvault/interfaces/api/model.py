"""botocore's service models, compiled once into small immutable-ish objects.

The AWS service model is the API spec: routing, parsing, validation and serialization all
read the :class:`Operation` and :class:`Shape` objects built here. Shapes are compiled
once per model (patterns precompiled, references resolved, recursive shapes shared), so
the request path never touches botocore.

    >>> backup = load("backup")
    >>> op = backup.operations["DescribeBackupVault"]
    >>> (op.method, op.request_uri, op.input.members["BackupVaultName"].location)
    ('GET', '/backup-vaults/{backupVaultName}', 'uri')

Depends on botocore.loaders and the constraints in limits.py only; must not depend on
HTTP frameworks.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore import loaders

from snowvault.interfaces.api import limits

SUPPORTED_PROTOCOLS = frozenset({"rest-json", "json"})


class Shape:
    """One compiled shape; structure, list and map shapes point at other Shapes."""

    __slots__ = (
        "enum",
        "key",
        "max",
        "member",
        "members",
        "min",
        "name",
        "pattern",
        "required",
        "timestamp_format",
        "type",
        "value",
    )

    def __init__(self, name: str, type_: str) -> None:
        self.name = name
        self.type = type_
        self.members: dict[str, Member] = {}
        self.required: tuple[str, ...] = ()
        self.member: Shape | None = None
        self.key: Shape | None = None
        self.value: Shape | None = None
        self.min: float | None = None
        self.max: float | None = None
        self.pattern: re.Pattern[str] | None = None
        self.enum: frozenset[str] | None = None
        self.timestamp_format: str | None = None

    def __repr__(self) -> str:
        return f"Shape({self.name!r}, {self.type!r})"


@dataclass(frozen=True, slots=True)
class Member:
    """A structure member: its shape and where it travels in an HTTP message."""

    name: str
    shape: Shape
    location: str | None
    location_name: str
    timestamp_format: str | None


@dataclass(frozen=True, slots=True)
class Operation:
    name: str
    method: str
    request_uri: str
    input: Shape | None
    output: Shape | None
    errors: tuple[str, ...]
    response_code: int


@dataclass(frozen=True)
class ServiceModel:
    """One botocore service model: metadata, operations and error shape names."""

    name: str
    protocol: str
    signing_name: str
    target_prefix: str | None
    json_version: str
    operations: Mapping[str, Operation]
    error_shapes: frozenset[str]
    shapes: Mapping[str, Shape] = field(repr=False)

    @property
    def content_type(self) -> str:
        if self.protocol == "json":
            return f"application/x-amz-json-{self.json_version}"
        return "application/json"

    def defines_error(self, code: str) -> bool:
        return code in self.error_shapes


@functools.cache
def load(service_name: str) -> ServiceModel:
    """Load and compile the installed botocore model of ``service_name`` (cached)."""
    raw = loaders.Loader().load_service_model(service_name, "service-2")
    return compile_model(service_name, limits.amended(service_name, raw))


def compile_model(service_name: str, raw: Mapping[str, Any]) -> ServiceModel:
    meta = raw["metadata"]
    protocol = str(meta["protocol"])
    if protocol not in SUPPORTED_PROTOCOLS:
        raise ValueError(f"{service_name}: protocol {protocol} is not supported")
    compiler = _Compiler(raw["shapes"])
    operations = {
        name: _operation(name, spec, compiler) for name, spec in raw["operations"].items()
    }
    errors = frozenset(n for n, s in raw["shapes"].items() if s.get("exception"))
    return ServiceModel(
        name=service_name,
        protocol=protocol,
        signing_name=str(meta.get("signingName") or meta["endpointPrefix"]),
        target_prefix=meta.get("targetPrefix"),
        json_version=str(meta.get("jsonVersion", "1.1")),
        operations=operations,
        error_shapes=errors,
        shapes=compiler.done,
    )


def _operation(name: str, spec: Mapping[str, Any], compiler: _Compiler) -> Operation:
    http = spec.get("http", {})
    return Operation(
        name=name,
        method=str(http.get("method", "POST")).upper(),
        request_uri=str(http.get("requestUri", "/")),
        input=compiler.shape(spec["input"]["shape"]) if "input" in spec else None,
        output=compiler.shape(spec["output"]["shape"]) if "output" in spec else None,
        errors=tuple(e["shape"] for e in spec.get("errors", ())),
        response_code=int(http.get("responseCode", 200)),
    )


def compile_pattern(pattern: str) -> re.Pattern[str] | None:
    """A model pattern as a Python regex, to be used with ``fullmatch``.

    AWS services validate with Java's ``Pattern.matches`` (the whole value must match),
    which is what their documentation describes ("consisting of letters, numbers ..."):
    ``[a-zA-Z][_a-zA-Z0-9]*`` rejects ``"a b"``.
    """
    # Java's \p{Alpha}-style classes do not occur in the models we load; \uXXXX and
    # (?<!..) mean the same in Python's re, and re.ASCII makes \w, \d and \s ASCII-only
    # as in Java (Python's would take any Unicode digit or letter).
    # A construct Python cannot take (none in today's backup and kms models) skips the
    # pattern: min/max still apply, and refusing every request would be worse.
    try:
        return re.compile(pattern, re.ASCII)
    except re.error:
        return None


class _Compiler:
    """Resolves shape references once; recursive shapes become shared objects."""

    def __init__(self, raw_shapes: Mapping[str, Any]) -> None:
        self._raw = raw_shapes
        self.done: dict[str, Shape] = {}

    def shape(self, name: str) -> Shape:
        if name in self.done:
            return self.done[name]
        spec = self._raw[name]
        shape = Shape(name, str(spec["type"]))
        self.done[name] = shape  # registered before children: recursion terminates
        self._fill(shape, spec)
        return shape

    def _fill(self, shape: Shape, spec: Mapping[str, Any]) -> None:
        shape.min = spec.get("min")
        shape.max = spec.get("max")
        if "pattern" in spec:
            shape.pattern = compile_pattern(spec["pattern"])
        if "enum" in spec:
            shape.enum = frozenset(spec["enum"])
        shape.timestamp_format = spec.get("timestampFormat")
        if shape.type == "structure":
            shape.required = tuple(spec.get("required", ()))
            shape.members = {k: self._member(k, v) for k, v in spec.get("members", {}).items()}
        elif shape.type == "list":
            shape.member = self.shape(spec["member"]["shape"])
        elif shape.type == "map":
            shape.key = self.shape(spec["key"]["shape"])
            shape.value = self.shape(spec["value"]["shape"])

    def _member(self, name: str, spec: Mapping[str, Any]) -> Member:
        return Member(
            name=name,
            shape=self.shape(spec["shape"]),
            location=spec.get("location"),
            location_name=str(spec.get("locationName", name)),
            timestamp_format=spec.get("timestampFormat"),
        )
