"""Condition blocks: the operators, their parsing and their evaluation against a context.

A :class:`Condition` is one ``operator: {key: values}`` pair; :func:`parse_conditions`
validates a ``Condition`` element, :func:`condition_holds` decides one against the
normalised context built by :func:`snowvault.control.model.iam.requests.request_context`.
Pure; depends on nothing but :mod:`snowvault.core`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from snowvault.core import wildcard
from snowvault.core.errors import InvalidInput


def malformed(problem: str) -> InvalidInput:
    return InvalidInput(detail=f"MalformedPolicyDocument: {problem}")


@dataclass(frozen=True)
class Condition:
    """One ``operator: {key: values}`` pair of a ``Condition`` block."""

    operator: str  # as written, e.g. "ForAnyValue:StringLikeIfExists"
    base: str  # canonical base operator, e.g. "StringLike"
    qualifier: Literal["", "ForAnyValue", "ForAllValues"]
    if_exists: bool
    key: str  # lower-cased: keys are case-insensitive
    values: tuple[str, ...]


@dataclass(frozen=True)
class _Operator:
    """A base condition operator: how one request value matches one policy value."""

    match: Callable[[str, str], bool]
    negated: bool
    check: Callable[[str], bool]  # is a policy value well-formed for this operator?


def glob_match(pattern: str, text: str, *, ignore_case: bool = False) -> bool:
    """``*`` matches any run of characters (even ``:`` and ``/``), ``?`` exactly one;
    without backtracking (:mod:`snowvault.core.wildcard`): a policy's pattern is the
    caller's, and a regular expression of many ``*`` took exponential time."""
    return wildcard.match(pattern, text, ignore_case=ignore_case)


def _number(text: str) -> Decimal | None:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def parse_date(text: str) -> datetime | None:
    """An ISO 8601 date/time or a number of seconds since the epoch, as aware UTC."""
    number = _number(text)
    if number is not None:
        return datetime.fromtimestamp(float(number), UTC)
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _ip_in(address: str, network: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
        net = ipaddress.ip_network(network.strip(), strict=False)
    except ValueError:
        return False
    return ip.version == net.version and ip in net


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return False
    return True


def _arn_like(value: str, pattern: str) -> bool:
    have, want = value.split(":", 5), pattern.split(":", 5)
    if len(have) != 6 or len(want) != 6:
        return False
    return all(glob_match(w, h) for w, h in zip(want, have))


def _compare_numbers(op: Callable[[Decimal, Decimal], bool]) -> Callable[[str, str], bool]:
    def match(value: str, policy_value: str) -> bool:
        a, b = _number(value), _number(policy_value)
        return a is not None and b is not None and op(a, b)

    return match


def _compare_dates(op: Callable[[datetime, datetime], bool]) -> Callable[[str, str], bool]:
    def match(value: str, policy_value: str) -> bool:
        a, b = parse_date(value), parse_date(policy_value)
        return a is not None and b is not None and op(a, b)

    return match


def _any_text(_: str) -> bool:
    return True


def _is_number(text: str) -> bool:
    return _number(text) is not None


def _is_date(text: str) -> bool:
    return parse_date(text) is not None


def _is_bool(text: str) -> bool:
    return text.lower() in ("true", "false")


def _is_arn_pattern(text: str) -> bool:
    return len(text.split(":", 5)) == 6


def _eq(a: Any, b: Any) -> bool:
    return bool(a == b)


def _lt(a: Any, b: Any) -> bool:
    return bool(a < b)


def _le(a: Any, b: Any) -> bool:
    return bool(a <= b)


def _string_equals(v: str, p: str) -> bool:
    return v == p


def _string_equals_ic(v: str, p: str) -> bool:
    return v.casefold() == p.casefold()


def _string_like(v: str, p: str) -> bool:
    return glob_match(p, v)


def _bool_equals(v: str, p: str) -> bool:
    return v.lower() == p.lower()


def _gt(a: Any, b: Any) -> bool:
    return bool(a > b)


def _ge(a: Any, b: Any) -> bool:
    return bool(a >= b)


def _ip_match(v: str, p: str) -> bool:
    return _ip_in(v, p)


def _family(
    names: tuple[str, str], match: Callable[[str, str], bool], check: Callable[[str], bool]
) -> dict[str, _Operator]:
    """A positive operator and its negation."""
    return {names[0]: _Operator(match, False, check), names[1]: _Operator(match, True, check)}


_OPERATORS: dict[str, _Operator] = {
    **_family(("StringEquals", "StringNotEquals"), _string_equals, _any_text),
    **_family(
        ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"), _string_equals_ic, _any_text
    ),
    **_family(("StringLike", "StringNotLike"), _string_like, _any_text),
    **_family(("NumericEquals", "NumericNotEquals"), _compare_numbers(_eq), _is_number),
    "NumericLessThan": _Operator(_compare_numbers(_lt), False, _is_number),
    "NumericLessThanEquals": _Operator(_compare_numbers(_le), False, _is_number),
    "NumericGreaterThan": _Operator(_compare_numbers(_gt), False, _is_number),
    "NumericGreaterThanEquals": _Operator(_compare_numbers(_ge), False, _is_number),
    **_family(("DateEquals", "DateNotEquals"), _compare_dates(_eq), _is_date),
    "DateLessThan": _Operator(_compare_dates(_lt), False, _is_date),
    "DateLessThanEquals": _Operator(_compare_dates(_le), False, _is_date),
    "DateGreaterThan": _Operator(_compare_dates(_gt), False, _is_date),
    "DateGreaterThanEquals": _Operator(_compare_dates(_ge), False, _is_date),
    "Bool": _Operator(_bool_equals, False, _is_bool),
    "BinaryEquals": _Operator(_string_equals, False, _any_text),
    **_family(("IpAddress", "NotIpAddress"), _ip_match, _is_network),
    **_family(("ArnEquals", "ArnNotEquals"), _arn_like, _is_arn_pattern),
    **_family(("ArnLike", "ArnNotLike"), _arn_like, _is_arn_pattern),
    "Null": _Operator(_bool_equals, False, _is_bool),
}
_BY_LOWER = {name.lower(): name for name in _OPERATORS}


def _split_operator(
    operator: str, where: str
) -> tuple[str, Literal["", "ForAnyValue", "ForAllValues"], bool]:
    qualifier: Literal["", "ForAnyValue", "ForAllValues"] = ""
    rest = operator
    if ":" in operator:
        prefix, rest = operator.split(":", 1)
        if prefix.lower() == "foranyvalue":
            qualifier = "ForAnyValue"
        elif prefix.lower() == "forallvalues":
            qualifier = "ForAllValues"
        else:
            raise malformed(f"{where}: invalid condition qualifier {prefix!r}")
    if_exists = rest.lower().endswith("ifexists") and rest.lower() != "ifexists"
    base_lower = rest.lower()[: -len("ifexists")] if if_exists else rest.lower()
    base = _BY_LOWER.get(base_lower)
    if base is None:
        raise malformed(f"{where}: invalid condition operator {operator!r}")
    if base == "Null" and (if_exists or qualifier):
        raise malformed(f"{where}: the Null operator takes no IfExists or qualifier")
    return base, qualifier, if_exists


def parse_conditions(raw: object, where: str) -> tuple[Condition, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise malformed(f"{where}: Condition must be an object")
    parsed: list[Condition] = []
    for operator, block in raw.items():
        base, qualifier, if_exists = _split_operator(operator, where)
        if not isinstance(block, dict) or not block:
            raise malformed(f"{where}: condition {operator} must map keys to values")
        for key, values in block.items():
            texts = _condition_values(values, f"{where}: condition {operator} {key}")
            bad = [t for t in texts if not _OPERATORS[base].check(t)]
            if bad:
                raise malformed(f"{where}: {bad[0]!r} is not a valid value for {operator}")
            parsed.append(Condition(operator, base, qualifier, if_exists, key.lower(), texts))
    return tuple(parsed)


def _condition_values(values: object, what: str) -> tuple[str, ...]:
    items = values if isinstance(values, list) else [values]
    if not items:
        raise malformed(f"{what}: needs at least one value")
    return tuple(_scalar_text(v, what) for v in items)


def _scalar_text(value: object, what: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise malformed(f"{what}: values must be strings, numbers or booleans")


def condition_holds(condition: Condition, context: Mapping[str, tuple[str, ...]]) -> bool:
    """Decide one condition against a normalised context (see :func:`request_context`)."""
    present = context.get(condition.key)
    if condition.base == "Null":
        absent = not present
        return any((v.lower() == "true") == absent for v in condition.values)
    operator = _OPERATORS[condition.base]
    if not present:
        if condition.if_exists:
            return True
        if condition.qualifier == "ForAllValues":
            return True
        if condition.qualifier == "ForAnyValue":
            return False
        return operator.negated

    def passes(value: str) -> bool:
        hit = any(operator.match(value, p) for p in condition.values)
        return hit != operator.negated

    if condition.qualifier == "ForAllValues":
        return all(passes(v) for v in present)
    if condition.qualifier == "ForAnyValue" or not operator.negated:
        return any(passes(v) for v in present)
    return all(passes(v) for v in present)
