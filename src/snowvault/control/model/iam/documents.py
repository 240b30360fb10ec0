"""Policy documents: parse and validate identity and resource policies into frozen dataclasses.

Pure; depends on :mod:`.conditions` and :mod:`snowvault.core` only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from snowvault.control.model.iam.conditions import Condition, malformed, parse_conditions

PolicyKind = Literal["identity", "resource"]
Effect = Literal["Allow", "Deny"]

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


@dataclass(frozen=True)
class PrincipalSpec:
    """A ``Principal`` or ``NotPrincipal`` element: ``"*"`` or ``{"AWS": ...}`` etc."""

    wildcard: bool = False
    aws: tuple[str, ...] = ()
    others: tuple[str, ...] = ()  # Service, Federated and CanonicalUser values


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
        raise malformed(f"unknown field {unknown[0]}")
    version = doc.get("Version", "2008-10-17")
    if version not in VERSIONS:
        raise malformed(f"the policy must contain a valid version string, not {version!r}")
    policy_id = doc.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        raise malformed("Id must be a string")
    if "Statement" not in doc:
        raise malformed("missing required field Statement")
    raw = doc["Statement"]
    items = [raw] if isinstance(raw, dict) else raw
    if not isinstance(items, list) or not items:
        raise malformed("Statement must be an object or a non-empty list of objects")
    statements = tuple(_parse_statement(item, kind, i) for i, item in enumerate(items))
    sids = [s.sid for s in statements if s.sid]
    if len(sids) != len(set(sids)):
        raise malformed("statement IDs (SID) in a single policy must be unique")
    return Policy(statements, kind, version, policy_id)


def _load_json(document: str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(document, str):
        try:
            loaded = json.loads(document)
        except json.JSONDecodeError as err:
            raise malformed(f"not valid JSON ({err.msg} at line {err.lineno})") from err
        except RecursionError:  # nested past the interpreter's limit: no policy is
            raise malformed("nested too deeply") from None
    else:
        loaded = dict(document)
    if not isinstance(loaded, dict):
        raise malformed("the policy document must be a JSON object")
    return loaded


def _parse_statement(raw: object, kind: PolicyKind, index: int) -> Statement:
    if not isinstance(raw, dict):
        raise malformed(f"statement {index} must be an object")
    where = f"statement {raw.get('Sid') or index}"
    unknown = sorted(set(raw) - _STATEMENT_KEYS)
    if unknown:
        raise malformed(f"{where}: unknown field {unknown[0]}")
    sid = _parse_sid(raw.get("Sid"), kind, where)
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise malformed(f'{where}: Effect must be "Allow" or "Deny", not {effect!r}')
    actions, not_action = _pick_one(raw, "Action", "NotAction", where)
    for action in actions:
        if action != "*" and not _ACTION_RE.match(action):
            raise malformed(f"{where}: invalid action {action!r} (expected service:Action)")
    resources, not_resource = _pick_one(raw, "Resource", "NotResource", where)
    for resource in resources:
        if resource != "*" and not resource.startswith("arn:"):
            raise malformed(f'{where}: resource {resource!r} must be in ARN format or "*"')
    principal, not_principal = _parse_principal_element(raw, kind, where)
    conditions = parse_conditions(raw.get("Condition"), where)
    return Statement(
        effect, sid, actions, not_action, resources, not_resource, principal, not_principal,
        conditions,
    )  # fmt: skip


def _parse_sid(sid: object, kind: PolicyKind, where: str) -> str | None:
    if sid is None:
        return None
    if not isinstance(sid, str):
        raise malformed(f"{where}: Sid must be a string")
    if kind == "identity" and not _IDENTITY_SID_RE.match(sid):
        raise malformed(f"{where}: Sid {sid!r} may hold only letters A-Z, a-z and digits")
    return sid or None


def _pick_one(
    raw: dict[str, Any], name: str, not_name: str, where: str
) -> tuple[tuple[str, ...], bool]:
    if (name in raw) == (not_name in raw):
        raise malformed(f"{where}: exactly one of {name} or {not_name} is required")
    key = name if name in raw else not_name
    return _string_list(raw[key], f"{where}: {key}"), key == not_name


def _string_list(value: object, what: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) and v for v in items):
        raise malformed(f"{what} must be a non-empty string or list of non-empty strings")
    return tuple(items)


def _parse_principal_element(
    raw: dict[str, Any], kind: PolicyKind, where: str
) -> tuple[PrincipalSpec | None, bool]:
    present = [k for k in ("Principal", "NotPrincipal") if k in raw]
    if kind == "identity":
        if present:
            raise malformed(f"{where}: an identity-based policy must not specify a principal")
        return None, False
    if len(present) != 1:
        raise malformed(f"{where}: exactly one of Principal or NotPrincipal is required")
    return _parse_principal(raw[present[0]], where), present[0] == "NotPrincipal"


def _parse_principal(value: object, where: str) -> PrincipalSpec:
    if value == "*":
        return PrincipalSpec(wildcard=True)
    if not isinstance(value, dict) or not value:
        raise malformed(f"{where}: invalid principal in policy: {value!r}")
    aws: tuple[str, ...] = ()
    others: list[str] = []
    for ptype, entries in value.items():
        if ptype not in _PRINCIPAL_TYPES:
            raise malformed(f"{where}: invalid principal type {ptype!r}")
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
    raise malformed(f"{where}: invalid principal in policy: {value!r}")
