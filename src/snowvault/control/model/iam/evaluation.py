"""Deciding a request against identity and resource policies, in AWS's order (see the
package docstring), and AWS's AccessDenied wording.

Pure; depends on the sibling modules only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from snowvault.control.model.iam.conditions import condition_holds, glob_match
from snowvault.control.model.iam.documents import Effect, Policy, PrincipalSpec, Statement
from snowvault.control.model.iam.requests import Principal, Request, request_context

Reason = Literal["explicit-deny", "allowed", "implicit-deny"]
Source = Literal["identity", "resource", "root"]
_ROOT_ARN_RE = re.compile(r"^arn:[^:]+:iam::(\d{12}):root$")
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
