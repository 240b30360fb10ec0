"""Turn request parts into a typed, validated input dict, and output dicts into HTTP.

Input: values found in the URI, query string and headers arrive as strings and are
converted by shape type; body members arrive as JSON and are type-checked. Timestamps
become aware UTC datetimes, blobs become bytes. Then the whole input is validated
against the model: required members, length and value ranges, patterns, enums. The
first violation raises :class:`InputError` naming the member path
(``BackupPlan.Rules[0].RuleName``).

Beyond what the model states (limits.py adds what AWS enforces but the model omits):
numbers must fit their Java type as on AWS (integer: 32 bits, long: 64 bits; floats
finite), integers in the URI or query string are ASCII digits, and no string may hold
NUL or a lone surrogate (nothing can store them faithfully: PostgreSQL refuses NUL,
UTF-8 has no surrogates).

Output: only modelled members are sent; datetimes become epoch seconds (float), bytes
become base64, ``location: header`` members become headers, and the status code is the
operation's ``responseCode``.

    >>> from snowvault.interfaces.api import model
    >>> op = model.load("backup").operations["ListBackupVaults"]
    >>> parse_input(op.input, {"MaxResults": "5"}, {})
    {'MaxResults': 5}

Depends on the compiled model only; must not depend on HTTP frameworks or other layers.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any, Literal

from snowvault.interfaces.api import limits
from snowvault.interfaces.api.model import Operation, Shape

log = logging.getLogger(__name__)

ErrorKind = Literal["missing", "invalid"]
_INTEGRAL = frozenset({"integer", "long", "short", "byte"})
_FLOATING = frozenset({"float", "double"})
# The Java types AWS deserializes into: a value outside is refused, never stored.
_TYPE_RANGE = {
    "byte": (-(2**7), 2**7 - 1),
    "short": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
}
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]{1,30}", re.ASCII)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class InputError(Exception):
    """A request member is missing or violates the model; ``field`` names it."""

    def __init__(self, kind: ErrorKind, field: str, message: str) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.field = field
        self.message = message


def _invalid(path: str, value: object, constraint: str) -> InputError:
    shown = "null" if value is None else repr(_short(value))
    if len(shown) > 120:  # a 500-item list is named, not echoed
        shown = shown[:120] + "..."
    return InputError(
        "invalid",
        path,
        f"1 validation error detected: Value {shown} at '{path}' "
        f"failed to satisfy constraint: {constraint}",
    )


def _short(value: object) -> object:
    if isinstance(value, str) and len(value) > 64:
        return value[:64] + "..."
    if isinstance(value, bytes) and len(value) > 64:
        return value[:64] + b"..."
    return value


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


# -- input: strings from the URI, query string and headers ------------------------------


def parse_input(
    shape: Shape | None, located: Mapping[str, object], body: Mapping[str, Any]
) -> dict[str, Any]:
    """The operation input: ``located`` values (strings) plus ``body`` members (JSON)."""
    if shape is None:
        return {}
    result: dict[str, Any] = {}
    for name, member in shape.members.items():
        if name in located:
            result[name] = _from_string(member.shape, located[name], name)
        elif member.location is None:
            value = body.get(member.location_name)
            if value is not None:
                result[name] = _from_json(member.shape, value, name)
    validate(shape, result, "")
    return result


def _from_string(shape: Shape, raw: object, path: str) -> Any:
    if shape.type == "list" and isinstance(raw, list):
        assert shape.member is not None
        return [_from_string(shape.member, v, f"{path}[{i}]") for i, v in enumerate(raw)]
    if shape.type == "map" and isinstance(raw, dict):
        assert shape.value is not None
        return {k: _from_string(shape.value, v, f"{path}.{k}") for k, v in raw.items()}
    if not isinstance(raw, str):
        raise _invalid(path, raw, f"Member must be a {shape.type}")
    return _scalar_from_string(shape, raw, path)


def _scalar_from_string(shape: Shape, raw: str, path: str) -> Any:
    kind = shape.type
    if kind in _INTEGRAL:
        if _INTEGER_TEXT.fullmatch(raw) is None:
            raise _invalid(path, raw, f"Member must be an {kind}")
        return int(raw)
    if kind in _FLOATING:
        try:
            return float(raw)
        except ValueError:
            raise _invalid(path, raw, f"Member must be a {kind}") from None
    if kind == "boolean":
        if raw.lower() not in ("true", "false"):
            raise _invalid(path, raw, "Member must be true or false")
        return raw.lower() == "true"
    if kind == "timestamp":
        return parse_timestamp(raw, path)
    if kind == "blob":
        return _decode_blob(raw, path)
    return raw


def parse_timestamp(raw: str | float, path: str) -> datetime:
    """Epoch seconds, ISO 8601 or RFC 822 to an aware UTC datetime."""
    try:
        if isinstance(raw, int | float):
            return _from_epoch(raw)
        try:
            return _from_epoch(float(raw))
        except ValueError:
            pass
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            parsed = parsedate_to_datetime(raw)
    except (ValueError, TypeError, OverflowError, OSError):
        raise _invalid(path, raw, "Member must be a timestamp") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _from_epoch(seconds: float) -> datetime:
    if not math.isfinite(seconds):
        raise ValueError("not a finite number")
    return datetime.fromtimestamp(seconds, UTC)


def _decode_blob(raw: str, path: str) -> bytes:
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(path, _short(raw), "Member must be base64-encoded") from None


# -- input: JSON body ----------------------------------------------------------------------


def _from_json(shape: Shape, value: Any, path: str) -> Any:
    kind = shape.type
    if kind == "structure":
        return _struct_from_json(shape, value, path)
    if kind == "list":
        if not isinstance(value, list):
            raise _invalid(path, value, "Member must be a list")
        assert shape.member is not None
        item = shape.member
        return [_from_json(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if kind == "map":
        if not isinstance(value, dict):
            raise _invalid(path, value, "Member must be a map")
        assert shape.value is not None
        val = shape.value
        return {k: _from_json(val, v, f"{path}.{k}") for k, v in value.items()}
    return _scalar_from_json(shape, value, path)


def _struct_from_json(shape: Shape, value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(path, value, "Member must be a structure")
    out: dict[str, Any] = {}
    for name, member in shape.members.items():
        item = value.get(member.location_name)
        if item is not None:
            out[name] = _from_json(member.shape, item, _join(path, name))
    return out


def _scalar_from_json(shape: Shape, value: Any, path: str) -> Any:
    kind = shape.type
    if kind == "string":
        ok = isinstance(value, str)
    elif kind == "boolean":
        ok = isinstance(value, bool)
    elif kind in _INTEGRAL:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind in _FLOATING:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind == "timestamp":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise _invalid(path, value, "Member must be a timestamp")
        return parse_timestamp(value, path)
    elif kind == "blob":
        if not isinstance(value, str):
            raise _invalid(path, value, "Member must be base64-encoded")
        return _decode_blob(value, path)
    else:  # document and friends: passed through as JSON
        return value
    if not ok:
        raise _invalid(path, value, f"Member must be a {kind}")
    return value


# -- validation ------------------------------------------------------------------------------


def validate(shape: Shape, value: Any, path: str) -> None:
    """Raise :class:`InputError` for the first model constraint ``value`` violates."""
    kind = shape.type
    if kind == "structure":
        _validate_structure(shape, value, path)
    elif kind == "list":
        _check_range(shape, len(value), path, value, "length")
        assert shape.member is not None
        for i, item in enumerate(value):
            validate(shape.member, item, f"{path}[{i}]")
    elif kind == "map":
        _check_range(shape, len(value), path, value, "length")
        assert shape.key is not None and shape.value is not None
        for k, v in value.items():
            validate(shape.key, k, f"{path}.{k}")
            validate(shape.value, v, f"{path}.{k}")
    elif kind == "string":
        _validate_string(shape, value, path)
    elif kind == "blob":
        _check_range(shape, len(value), path, value, "length")
    elif kind in _INTEGRAL:
        _check_range(shape, value, path, value, "value")
        _check_type_range(kind, value, path)
    elif kind in _FLOATING:
        if not math.isfinite(value):
            raise _invalid(path, value, "Member must be a finite number")
        _check_range(shape, value, path, value, "value")


def _validate_structure(shape: Shape, value: Mapping[str, Any], path: str) -> None:
    for name in shape.required:
        if value.get(name) is None:
            field = _join(path, name)
            raise InputError(
                "missing",
                field,
                f"1 validation error detected: Value null at '{field}' "
                "failed to satisfy constraint: Member must not be null",
            )
    members = shape.members
    for name, item in value.items():
        validate(members[name].shape, item, _join(path, name))


def _validate_string(shape: Shape, value: str, path: str) -> None:
    _check_range(shape, len(value), path, value, "length")
    if _UNSTORABLE.search(value) is not None:
        raise _invalid(path, value, "Member must not contain NUL or unpaired surrogate characters")
    if shape.enum is not None and value not in shape.enum:
        allowed = ", ".join(sorted(shape.enum))
        raise _invalid(path, value, f"Member must satisfy enum value set: [{allowed}]")
    if shape.pattern is not None and shape.pattern.fullmatch(value) is None:
        pattern = shape.pattern.pattern
        text = limits.PATTERN_TEXT.get(pattern)
        if text is None:
            text = f"Member must satisfy regular expression pattern: {pattern}"
        raise _invalid(path, value, text)


def _check_type_range(kind: str, value: int, path: str) -> None:
    lo, hi = _TYPE_RANGE.get(kind, (None, None))
    if lo is not None and value < lo:
        raise _invalid(path, value, f"Member must have value greater than or equal to {lo}")
    if hi is not None and value > hi:
        raise _invalid(path, value, f"Member must have value less than or equal to {hi}")


def _check_range(shape: Shape, n: float, path: str, value: object, what: str) -> None:
    if shape.min is not None and n < shape.min:
        raise _invalid(path, value, f"Member must have {what} greater than or equal to {shape.min}")
    if shape.max is not None and n > shape.max:
        raise _invalid(path, value, f"Member must have {what} less than or equal to {shape.max}")


# -- output ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Output:
    status: int
    headers: dict[str, str]
    body: bytes


def serialize_output(op: Operation, result: Mapping[str, Any] | None, protocol: str) -> Output:
    """The HTTP response for a handler's ``result`` dict."""
    status = op.response_code
    headers: dict[str, str] = {}
    body: dict[str, Any] = {}
    shape = op.output
    if shape is not None and result:
        _warn_unmodelled(shape, result, op.name)
        for name, member in shape.members.items():
            value = result.get(name)
            if value is None:
                continue
            if member.location == "header":
                headers[member.location_name] = _header_value(member.shape, value)
            elif member.location == "statusCode":
                status = int(value)
            elif member.location is None:
                body[member.location_name] = _to_json(member.shape, value)
        body.update(_extension_members(result))
    if status == 204:
        return Output(status, headers, b"")
    if not body and protocol == "rest-json" and shape is None:
        return Output(status, headers, b"")
    return Output(status, headers, dumps(body))


def dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


EXTENSION_PREFIX = "Snowvault"
"""Output members named ``Snowvault...`` are snowvault's extension fields (e.g.
DescribeRecoveryPoint's ``SnowvaultRestorableWindow``): sent as given (JSON-able
values), after the modelled ones; AWS SDKs ignore members their model lacks."""


def _extension_members(result: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k.startswith(EXTENSION_PREFIX) and v is not None}


def _warn_unmodelled(shape: Shape, result: Mapping[str, Any], op_name: str) -> None:
    extra = {k for k in result.keys() - shape.members.keys() if not k.startswith(EXTENSION_PREFIX)}
    if extra:
        log.warning("%s returned unmodelled members, not sent: %s", op_name, sorted(extra))


def _to_json(shape: Shape, value: Any) -> Any:
    return _writer(shape)(value)


Writer = Callable[[Any], Any]
_PLAIN = frozenset({"integer", "long", "short", "byte", "boolean", "float", "double"})
_WRITERS: dict[Shape, Writer] = {}


def _writer(shape: Shape) -> Writer:
    """The compiled JSON writer for ``shape`` (built once per shape, then reused).

    A 1000-item list page walks ~25 members per item: resolving each member's converter
    once per shape, instead of per value, halves the serialization time.
    """
    found = _WRITERS.get(shape)
    if found is None:
        found = _WRITERS[shape] = _compile(shape)
    return found


def _compile(shape: Shape) -> Writer:
    kind = shape.type
    if kind == "structure":
        return _structure_writer(shape)
    if kind == "list":
        assert shape.member is not None
        member = shape.member
        return lambda value: _list(_writer(member), value)
    if kind == "map":
        assert shape.value is not None
        item = shape.value
        return lambda value: {str(k): _writer(item)(v) for k, v in value.items()}
    if kind in _PLAIN:
        return _identity
    if kind == "string":
        return _string
    return lambda value: _scalar_to_json(kind, value)


def _structure_writer(shape: Shape) -> Writer:
    fields: list[tuple[str, str, Writer | None]] | None = None

    def write(value: Any) -> dict[str, Any]:
        nonlocal fields
        if fields is None:  # resolved on first use: shapes may refer to themselves
            fields = [
                (name, m.location_name, None if m.shape.type in _PLAIN else _writer(m.shape))
                for name, m in shape.members.items()
            ]
        out: dict[str, Any] = {}
        get = value.get
        for name, location_name, convert in fields:
            item = get(name)
            if item is not None:
                out[location_name] = item if convert is None else convert(item)
        return out

    return write


def _list(convert: Writer, values: Any) -> list[Any]:
    if convert is _identity:
        return list(values)
    return [convert(v) for v in values]


def _identity(value: Any) -> Any:
    return value


def _string(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _scalar_to_json(kind: str, value: Any) -> Any:
    if kind == "timestamp":
        return _epoch(value)
    if kind == "blob":
        raw = value.encode() if isinstance(value, str) else bytes(value)
        return base64.b64encode(raw).decode("ascii")
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value
        return aware.timestamp()
    if isinstance(value, str):
        return parse_timestamp(value, "output").timestamp()
    return float(value)


def _header_value(shape: Shape, value: Any) -> str:
    if shape.type == "timestamp":
        return format_datetime(datetime.fromtimestamp(_epoch(value), UTC), usegmt=True)
    if shape.type == "boolean":
        return "true" if value else "false"
    if shape.type == "blob":
        return str(_scalar_to_json("blob", value))
    return str(value.value if isinstance(value, enum.Enum) else value)
