"""IAM policy documents and their evaluation, as AWS IAM does it.

Pure rules: parse a policy document (identity-based, or resource-based such as a backup
vault access policy) into frozen dataclasses, then decide a :class:`Request` against the
identity policies of the caller and the resource's policy. No I/O, no clock: the time
the conditions see (``aws:CurrentTime``, ``aws:EpochTime``) is ``Request.now``.
Depends on nothing but :mod:`snowvault.core`.

The evaluation order is AWS's:

1. An explicit ``Deny`` that applies, in any policy, wins ("explicit-deny").
2. Same account: an ``Allow`` in an identity policy OR in the resource policy (naming the
   principal directly, or ``*``) grants. A resource policy that names only the *account*
   (``"123456789012"`` / ``arn:aws:iam::123456789012:root``) delegates to that account's
   IAM and grants nothing on its own, except to the root user itself.
3. Cross-account: the identity side AND the resource policy must both allow; here a
   resource policy naming the caller's account is enough on the resource side.
4. The root user of an account is allowed everything on its own account's resources:
   identity policies do not apply to it, but a resource-policy ``Deny`` does.
5. Anything else is an implicit deny ("implicit-deny").

>>> policy = parse_policy('''{"Version": "2012-10-17", "Statement": [
...     {"Sid": "Read", "Effect": "Allow", "Action": "backup:List*", "Resource": "*"}]}''')
>>> alice = Principal("arn:aws:iam::111122223333:user/alice", "111122223333")
>>> request = Request(alice, "backup:ListBackupVaults", "*", "111122223333")
>>> evaluate(request, [policy], None)
Decision(allowed=True, reason='allowed', sid='Read', source='identity')

Condition operators: ``String*``, ``Numeric*``, ``Date*``, ``Bool``, ``BinaryEquals``,
``IpAddress``/``NotIpAddress``, ``Arn*`` and ``Null``, each with the ``...IfExists``
suffix and the ``ForAnyValue:``/``ForAllValues:`` qualifiers. Several values for one key
are ORed; several keys, and several operators, are ANDed. A key missing from the request
makes a condition false, except for negated operators (``StringNotEquals``,
``NotIpAddress``, ...) and ``...IfExists`` (true), ``ForAllValues:`` (true) and ``Null``.
Condition operator names and key names are case-insensitive; values are not (except for
``StringEqualsIgnoreCase``). Policy variables (``${aws:username}``) are not substituted:
they compare as literal text.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from snowvault.core.errors import InvalidInput

PolicyKind = Literal["identity", "resource"]
Effect = Literal["Allow", "Deny"]
Reason = Literal["explicit-deny", "allowed", "implicit-deny"]
Source = Literal["identity", "resource", "root"]

VERSIONS = ("2012-10-17", "2008-10-17")
_DOC_KEYS = frozenset({"Version", "Id", "Statement"})
_STATEMENT_KEYS = frozenset(
    {
        "Sid",
        "Effect",
        "Principal",
        "NotPrincipal",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
    }
)
_PRINCIPAL_TYPES = ("AWS", "Service", "Federated", "CanonicalUser")
_ACTION_RE = re.compile(r"^[A-Za-z0-9-]+:[A-Za-z0-9*?_-]+$")
_IDENTITY_SID_RE = re.compile(r"^[A-Za-z0-9]*$")
_ACCOUNT_RE = re.compile(r"^\d{12}$")
_ROOT_ARN_RE = re.compile(r"^arn:[^:]+:iam::(\d{12}):root$")
_SESSION_ARN_RE = re.compile(r"^arn:([^:]+):sts::(\d{12}):assumed-role/([^/]+)/.+$")


def _malformed(problem: str) -> InvalidInput:
    return InvalidInput(detail=f"MalformedPolicyDocument: {problem}")


# --------------------------------------------------------------------------- documents


@dataclass(frozen=True)
class PrincipalSpec:
    """A ``Principal`` or ``NotPrincipal`` element: ``"*"`` or ``{"AWS": ...}`` etc."""

    wildcard: bool = False
    aws: tuple[str, ...] = ()
    others: tuple[str, ...] = ()  # Service, Federated and CanonicalUser values


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
class Statement:
    effect: Effect
    sid: str | None = None
    actions: tuple[str, ...] = ("*",)
    not_action: bool = False
    resources: tuple[str, ...] = ("*",)
    not_resource: bool = False
    principal: PrincipalSpec | None = None
    not_principal: bool = False
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class Policy:
    statements: tuple[Statement, ...]
    kind: PolicyKind = "identity"
    version: str = "2008-10-17"
    id: str | None = None


def parse_policy(document: str | Mapping[str, Any], kind: PolicyKind = "identity") -> Policy:
    """Parse and validate a policy document; raise :class:`InvalidInput` naming the problem.

    ``kind="resource"`` requires ``Principal``/``NotPrincipal`` in every statement;
    ``kind="identity"`` forbids them.
    """
    doc = _load_json(document)
    unknown = sorted(set(doc) - _DOC_KEYS)
    if unknown:
        raise _malformed(f"unknown field {unknown[0]}")
    version = doc.get("Version", "2008-10-17")
    if version not in VERSIONS:
        raise _malformed(f"the policy must contain a valid version string, not {version!r}")
    policy_id = doc.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        raise _malformed("Id must be a string")
    if "Statement" not in doc:
        raise _malformed("missing required field Statement")
    raw = doc["Statement"]
    items = [raw] if isinstance(raw, dict) else raw
    if not isinstance(items, list) or not items:
        raise _malformed("Statement must be an object or a non-empty list of objects")
    statements = tuple(_parse_statement(item, kind, i) for i, item in enumerate(items))
    sids = [s.sid for s in statements if s.sid]
    if len(sids) != len(set(sids)):
        raise _malformed("statement IDs (SID) in a single policy must be unique")
    return Policy(statements, kind, version, policy_id)


def _load_json(document: str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(document, str):
        try:
            loaded = json.loads(document)
        except json.JSONDecodeError as err:
            raise _malformed(f"not valid JSON ({err.msg} at line {err.lineno})") from err
    else:
        loaded = dict(document)
    if not isinstance(loaded, dict):
        raise _malformed("the policy document must be a JSON object")
    return loaded


def _parse_statement(raw: object, kind: PolicyKind, index: int) -> Statement:
    if not isinstance(raw, dict):
        raise _malformed(f"statement {index} must be an object")
    where = f"statement {raw.get('Sid') or index}"
    unknown = sorted(set(raw) - _STATEMENT_KEYS)
    if unknown:
        raise _malformed(f"{where}: unknown field {unknown[0]}")
    sid = _parse_sid(raw.get("Sid"), kind, where)
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise _malformed(f'{where}: Effect must be "Allow" or "Deny", not {effect!r}')
    actions, not_action = _pick_one(raw, "Action", "NotAction", where)
    for action in actions:
        if action != "*" and not _ACTION_RE.match(action):
            raise _malformed(f"{where}: invalid action {action!r} (expected service:Action)")
    resources, not_resource = _pick_one(raw, "Resource", "NotResource", where)
    for resource in resources:
        if resource != "*" and not resource.startswith("arn:"):
            raise _malformed(f'{where}: resource {resource!r} must be in ARN format or "*"')
    principal, not_principal = _parse_principal_element(raw, kind, where)
    conditions = _parse_conditions(raw.get("Condition"), where)
    return Statement(
        effect, sid, actions, not_action, resources, not_resource, principal, not_principal,
        conditions,
    )  # fmt: skip


def _parse_sid(sid: object, kind: PolicyKind, where: str) -> str | None:
    if sid is None:
        return None
    if not isinstance(sid, str):
        raise _malformed(f"{where}: Sid must be a string")
    if kind == "identity" and not _IDENTITY_SID_RE.match(sid):
        raise _malformed(f"{where}: Sid {sid!r} may hold only letters A-Z, a-z and digits")
    return sid or None


def _pick_one(
    raw: dict[str, Any], name: str, not_name: str, where: str
) -> tuple[tuple[str, ...], bool]:
    if (name in raw) == (not_name in raw):
        raise _malformed(f"{where}: exactly one of {name} or {not_name} is required")
    key = name if name in raw else not_name
    return _string_list(raw[key], f"{where}: {key}"), key == not_name


def _string_list(value: object, what: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) and v for v in items):
        raise _malformed(f"{what} must be a non-empty string or list of non-empty strings")
    return tuple(items)


def _parse_principal_element(
    raw: dict[str, Any], kind: PolicyKind, where: str
) -> tuple[PrincipalSpec | None, bool]:
    present = [k for k in ("Principal", "NotPrincipal") if k in raw]
    if kind == "identity":
        if present:
            raise _malformed(f"{where}: an identity-based policy must not specify a principal")
        return None, False
    if len(present) != 1:
        raise _malformed(f"{where}: exactly one of Principal or NotPrincipal is required")
    return _parse_principal(raw[present[0]], where), present[0] == "NotPrincipal"


def _parse_principal(value: object, where: str) -> PrincipalSpec:
    if value == "*":
        return PrincipalSpec(wildcard=True)
    if not isinstance(value, dict) or not value:
        raise _malformed(f"{where}: invalid principal in policy: {value!r}")
    aws: tuple[str, ...] = ()
    others: list[str] = []
    for ptype, entries in value.items():
        if ptype not in _PRINCIPAL_TYPES:
            raise _malformed(f"{where}: invalid principal type {ptype!r}")
        values = _string_list(entries, f"{where}: Principal {ptype}")
        if ptype == "AWS":
            aws = tuple(_normalise_aws_principal(v, where) for v in values)
        else:
            others.extend(values)
    return PrincipalSpec(wildcard="*" in aws, aws=aws, others=tuple(others))


def _normalise_aws_principal(value: str, where: str) -> str:
    if value == "*":
        return value
    if _ACCOUNT_RE.match(value):
        return f"arn:aws:iam::{value}:root"
    if value.startswith("arn:") and len(value.split(":", 5)) == 6:
        return value
    raise _malformed(f"{where}: invalid principal in policy: {value!r}")


# -------------------------------------------------------------------------- conditions


@dataclass(frozen=True)
class _Operator:
    """A base condition operator: how one request value matches one policy value."""

    match: Callable[[str, str], bool]
    negated: bool
    check: Callable[[str], bool]  # is a policy value well-formed for this operator?


def _glob(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return _compile_glob(pattern, flags)


@functools.lru_cache(maxsize=4096)
def _compile_glob(pattern: str, flags: int) -> re.Pattern[str]:
    body = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(f"^{body}$", flags | re.DOTALL)


def glob_match(pattern: str, text: str, *, ignore_case: bool = False) -> bool:
    """``*`` matches any run of characters (even ``:`` and ``/``), ``?`` exactly one."""
    return _glob(pattern, re.IGNORECASE if ignore_case else 0).match(text) is not None


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
            raise _malformed(f"{where}: invalid condition qualifier {prefix!r}")
    if_exists = rest.lower().endswith("ifexists") and rest.lower() != "ifexists"
    base_lower = rest.lower()[: -len("ifexists")] if if_exists else rest.lower()
    base = _BY_LOWER.get(base_lower)
    if base is None:
        raise _malformed(f"{where}: invalid condition operator {operator!r}")
    if base == "Null" and (if_exists or qualifier):
        raise _malformed(f"{where}: the Null operator takes no IfExists or qualifier")
    return base, qualifier, if_exists


def _parse_conditions(raw: object, where: str) -> tuple[Condition, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise _malformed(f"{where}: Condition must be an object")
    parsed: list[Condition] = []
    for operator, block in raw.items():
        base, qualifier, if_exists = _split_operator(operator, where)
        if not isinstance(block, dict) or not block:
            raise _malformed(f"{where}: condition {operator} must map keys to values")
        for key, values in block.items():
            texts = _condition_values(values, f"{where}: condition {operator} {key}")
            bad = [t for t in texts if not _OPERATORS[base].check(t)]
            if bad:
                raise _malformed(f"{where}: {bad[0]!r} is not a valid value for {operator}")
            parsed.append(Condition(operator, base, qualifier, if_exists, key.lower(), texts))
    return tuple(parsed)


def _condition_values(values: object, what: str) -> tuple[str, ...]:
    items = values if isinstance(values, list) else [values]
    if not items:
        raise _malformed(f"{what}: needs at least one value")
    return tuple(_scalar_text(v, what) for v in items)


def _scalar_text(value: object, what: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise _malformed(f"{what}: values must be strings, numbers or booleans")


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


# ----------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class Principal:
    """Who is asking. ``account`` is the 12-digit id; ``is_root`` for the account root."""

    arn: str
    account: str
    is_root: bool = False

    @classmethod
    def root(cls, account: str, partition: str = "aws") -> Principal:
        return cls(f"arn:{partition}:iam::{account}:root", account, True)

    @property
    def role_arn(self) -> str | None:
        """For an assumed-role session, the ARN of its role (AWS's ``aws:PrincipalArn``)."""
        m = _SESSION_ARN_RE.match(self.arn)
        return f"arn:{m[1]}:iam::{m[2]}:role/{m[3]}" if m else None


ContextValue = str | bool | int | float | datetime | Sequence[str]


@dataclass(frozen=True)
class Request:
    """One authorization question: may ``principal`` do ``action`` on ``resource_arn``?

    ``context`` holds condition keys the caller knows (``aws:SourceIp``,
    ``aws:SecureTransport``, service keys...); the principal keys, the time keys (from
    ``now``) and ``aws:ResourceTag/<key>`` (from ``resource_tags``) are derived here.
    """

    principal: Principal
    action: str
    resource_arn: str
    resource_account: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    now: datetime | None = None
    resource_tags: Mapping[str, str] = field(default_factory=dict)


def _context_texts(value: ContextValue) -> tuple[str, ...]:
    if isinstance(value, bool):
        return ("true" if value else "false",)
    if isinstance(value, datetime):
        return (value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),)
    if isinstance(value, int | float | str):
        return (str(value),)
    return tuple(str(v) for v in value)


def request_context(request: Request) -> dict[str, tuple[str, ...]]:
    """The request's condition keys, lower-cased, each with its tuple of values."""
    ctx = {k.lower(): _context_texts(v) for k, v in request.context.items()}
    for tag, value in request.resource_tags.items():
        ctx[f"aws:resourcetag/{tag}".lower()] = (value,)
    principal = request.principal
    ctx["aws:principalarn"] = (principal.role_arn or principal.arn,)
    ctx["aws:principalaccount"] = (principal.account,)
    if request.now is not None:
        ctx["aws:currenttime"] = _context_texts(request.now)
        ctx["aws:epochtime"] = (str(int(request.now.timestamp())),)
    return ctx


# --------------------------------------------------------------------------- evaluation

_Match = Literal["none", "account", "direct"]


@dataclass(frozen=True)
class Decision:
    """The outcome. ``sid`` is the deciding statement's Sid (when it has one); ``source``
    is the policy type that decided (for an implicit deny: the side that did not allow)."""

    allowed: bool
    reason: Reason
    sid: str | None = None
    source: Source | None = None


def action_matches(pattern: str, action: str) -> bool:
    return glob_match(pattern, action, ignore_case=True)


def resource_matches(pattern: str, resource: str) -> bool:
    return glob_match(pattern, resource)


def _principal_match(spec: PrincipalSpec, principal: Principal) -> _Match:
    if spec.wildcard:
        return "direct"
    names = {principal.arn, principal.role_arn}
    if names & set(spec.aws) or principal.arn in spec.others:
        return "direct"
    for entry in spec.aws:
        m = _ROOT_ARN_RE.match(entry)
        if m and m[1] == principal.account:
            return "direct" if principal.is_root else "account"
    return "none"


def _not_principal_match(spec: PrincipalSpec, principal: Principal) -> _Match:
    """NotPrincipal exempts a caller only when every entity it acts as is listed:
    itself, its role (for a session) and its account."""
    if spec.wildcard:
        return "none"
    listed = set(spec.aws) | set(spec.others)
    accounts = {m[1] for e in spec.aws if (m := _ROOT_ARN_RE.match(e))}
    chain_listed = (
        (principal.arn in listed or principal.is_root)
        and (principal.role_arn is None or principal.role_arn in listed)
        and principal.account in accounts
    )
    return "none" if chain_listed else "direct"


def _statement_match(
    statement: Statement, request: Request, ctx: Mapping[str, tuple[str, ...]]
) -> _Match:
    if any(action_matches(p, request.action) for p in statement.actions) == statement.not_action:
        return "none"
    hit = any(resource_matches(p, request.resource_arn) for p in statement.resources)
    if hit == statement.not_resource:
        return "none"
    level: _Match = "direct"
    if statement.principal is not None:
        matcher = _not_principal_match if statement.not_principal else _principal_match
        level = matcher(statement.principal, request.principal)
        if level == "none":
            return "none"
    if not all(condition_holds(c, ctx) for c in statement.conditions):
        return "none"
    return level


def _first(
    policies: Sequence[Policy], effect: Effect, request: Request, ctx: Mapping[str, tuple[str, ...]]
) -> tuple[Statement, _Match] | None:
    """The first statement of ``effect`` that applies, preferring a direct match."""
    found: tuple[Statement, _Match] | None = None
    for policy in policies:
        for statement in policy.statements:
            if statement.effect != effect:
                continue
            level = _statement_match(statement, request, ctx)
            if level == "direct":
                return statement, level
            if level == "account" and found is None:
                found = statement, level
    return found


def evaluate(
    request: Request, identity_policies: Sequence[Policy], resource_policy: Policy | None
) -> Decision:
    """Decide ``request`` as AWS IAM does (see the module docstring for the order)."""
    ctx = request_context(request)
    principal = request.principal
    identity = () if principal.is_root else identity_policies
    resource = (resource_policy,) if resource_policy is not None else ()

    denied = _first(identity, "Deny", request, ctx)
    if denied:
        return Decision(False, "explicit-deny", denied[0].sid, "identity")
    denied = _first(resource, "Deny", request, ctx)
    if denied:
        return Decision(False, "explicit-deny", denied[0].sid, "resource")

    by_identity = _first(identity, "Allow", request, ctx)
    by_resource = _first(resource, "Allow", request, ctx)
    if principal.account == request.resource_account:
        if principal.is_root:
            return Decision(True, "allowed", None, "root")
        if by_identity:
            return Decision(True, "allowed", by_identity[0].sid, "identity")
        if by_resource and by_resource[1] == "direct":
            return Decision(True, "allowed", by_resource[0].sid, "resource")
        return Decision(False, "implicit-deny", None, "identity")
    if not (principal.is_root or by_identity):
        return Decision(False, "implicit-deny", None, "identity")
    if by_resource:
        return Decision(True, "allowed", by_resource[0].sid, "resource")
    return Decision(False, "implicit-deny", None, "resource")


def access_denied_message(request: Request, decision: Decision) -> str:
    """AWS's AccessDenied wording, e.g.::

    User: arn:aws:iam::111122223333:user/bob is not authorized to perform:
    backup:DeleteRecoveryPoint on resource: arn:... with an explicit deny in a
    resource-based policy
    """
    text = (
        f"User: {request.principal.arn} is not authorized to perform: {request.action} "
        f"on resource: {request.resource_arn}"
    )
    policy_type = "resource-based" if decision.source == "resource" else "identity-based"
    if decision.reason == "explicit-deny":
        article = "a" if policy_type == "resource-based" else "an"
        return f"{text} with an explicit deny in {article} {policy_type} policy"
    if decision.reason == "implicit-deny":
        return f"{text} because no {policy_type} policy allows the {request.action} action"
    return text
