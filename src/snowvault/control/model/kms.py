"""The key service's pure rules: key states and what each action may do in them, the
bounds of rotation periods and deletion windows, alias names, the key-policy decision
its lockout safety check, grants, and the decision KMS makes from key policy, identity
policies and grants together (:func:`key_access`).

    refusal(USABLE, key_state)            # None, or Refusal.DISABLED / INVALID_STATE
    NEXT_STATE["CancelKeyDeletion"]       # KeyState.DISABLED (as on AWS)
    rotation_period_problem(30)           # "RotationPeriodInDays must be 90..2560, got 30"
    alias_problem("alias/aws/x")          # AliasProblem.RESERVED

Every rule answers a value (a refusal, a problem's words, a decision); services/kms.py
raises the error that goes with it. Nothing here reads a clock or the catalog.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from snowvault.control.model import iam


class KeyState(StrEnum):
    """KeyMetadata.KeyState values snowvault uses (a destroyed key is gone, not a state
    an action meets)."""

    ENABLED = "Enabled"
    DISABLED = "Disabled"
    PENDING_DELETION = "PendingDeletion"


class Refusal(StrEnum):
    """Why an action is refused in a key state: DisabledException or
    KMSInvalidStateException."""

    DISABLED = "disabled"
    INVALID_STATE = "invalid-state"


class Needs(StrEnum):
    """What an action needs of the key's state."""

    NOT_PENDING = "not-pending"  # managing a key: enable, disable, schedule deletion...
    USABLE = "usable"  # cryptography and rotation: the key must be Enabled
    PENDING = "pending"  # CancelKeyDeletion


RULES: Mapping[Needs, Mapping[KeyState, Refusal]] = {
    Needs.NOT_PENDING: {KeyState.PENDING_DELETION: Refusal.INVALID_STATE},
    Needs.USABLE: {
        KeyState.DISABLED: Refusal.DISABLED,
        KeyState.PENDING_DELETION: Refusal.INVALID_STATE,
    },
    Needs.PENDING: {
        KeyState.ENABLED: Refusal.INVALID_STATE,
        KeyState.DISABLED: Refusal.INVALID_STATE,
    },
}
"""For each need, the states that refuse it and how (a state not listed allows it)."""

NEXT_STATE: Mapping[str, KeyState] = {
    "EnableKey": KeyState.ENABLED,
    "DisableKey": KeyState.DISABLED,
    "ScheduleKeyDeletion": KeyState.PENDING_DELETION,
    "CancelKeyDeletion": KeyState.DISABLED,  # as on AWS: it comes back disabled
}
"""The state each state-changing action leaves the key in."""

ACTION_NEEDS: Mapping[str, Needs] = {
    "EnableKey": Needs.NOT_PENDING,
    "DisableKey": Needs.NOT_PENDING,
    "ScheduleKeyDeletion": Needs.NOT_PENDING,
    "CancelKeyDeletion": Needs.PENDING,
}
"""What the state-changing actions need (the others name their need where they run)."""


def refusal(needs: Needs, state: str) -> Refusal | None:
    """How a key in ``state`` refuses an action that ``needs`` something; None: allowed.
    A state this table does not know refuses as invalid."""
    try:
        known = KeyState(state)
    except ValueError:
        return Refusal.INVALID_STATE
    return RULES[needs].get(known)


# --------------------------------------------------------------- rotation and deletion

DEFAULT_ROTATION_DAYS = 365
ROTATION_DAYS_RANGE = (90, 2560)
DEFAULT_DELETION_WINDOW = 30
DELETION_WINDOW_RANGE = (7, 30)
ON_DEMAND_ROTATION_LIMIT = 10


def rotation_period_problem(days: int) -> str | None:
    """Words for a RotationPeriodInDays out of bounds; None when it is fine."""
    low, high = ROTATION_DAYS_RANGE
    return (
        None if low <= days <= high else f"RotationPeriodInDays must be {low}..{high}, got {days}"
    )


def pending_window_problem(days: int) -> str | None:
    """Words for a PendingWindowInDays out of bounds; None when it is fine."""
    low, high = DELETION_WINDOW_RANGE
    return None if low <= days <= high else f"PendingWindowInDays must be {low}..{high}, got {days}"


def next_rotation(due: datetime, period_days: int | None, now: datetime) -> datetime:
    """The rotation date after one due at ``due`` ran at ``now``: one period on, and past
    ``now`` (a server that slept through several periods rotates once)."""
    period = timedelta(days=period_days or DEFAULT_ROTATION_DAYS)
    following = due + period
    while following <= now:
        following += period
    return following


# --------------------------------------------------------------- aliases

ALIAS_MAX_LENGTH = 256
_ALIAS_RE = re.compile(r"^alias/[a-zA-Z0-9/_-]+$")


class AliasProblem(StrEnum):
    RESERVED = "reserved"  # alias/aws/...: AWS managed keys' names
    INVALID = "invalid"


ALIAS_RULE = "it must start with alias/ and use only a-z, A-Z, 0-9, /, _ and -"


def alias_problem(name: str) -> AliasProblem | None:
    """Why ``name`` cannot name a customer's alias; None when it can."""
    if name.startswith("alias/aws/"):
        return AliasProblem.RESERVED
    if not _ALIAS_RE.match(name) or len(name) > ALIAS_MAX_LENGTH:
        return AliasProblem.INVALID
    return None


# --------------------------------------------------------------- key policies


@dataclass(frozen=True)
class Asker:
    """Who asks, as a key policy sees it."""

    principal_arn: str
    account_id: str
    now: datetime
    source_ip: str | None = None


def key_policy_decision(
    policy: iam.Policy, asker: Asker, action: str, key_arn: str
) -> tuple[bool, str]:
    """``(allowed, why not)`` for ``kms:<action>`` on a key under its key policy alone.

    Allowed when no Deny applies and an Allow names the caller (or ``*``) or the
    caller's account (delegation: IAM, checked before, decides then). The account's
    root user gets no shortcut.
    """
    context: dict[str, iam.ContextValue] = {}
    if asker.source_ip:
        context["aws:SourceIp"] = asker.source_ip
    account = asker.account_id

    def decide(principal: iam.Principal) -> iam.Decision:
        request = iam.Request(principal, f"kms:{action}", key_arn, account, context, asker.now)
        return iam.evaluate(request, (), policy)

    direct = decide(iam.Principal(asker.principal_arn, account, is_root=False))
    if direct.reason == "explicit-deny":
        return False, "with an explicit deny in a resource-based policy"
    if direct.allowed:
        return True, ""
    delegated = decide(iam.Principal(f"arn:aws:iam::{account}:root", account, is_root=False))
    if delegated.allowed:
        return True, ""
    return False, f"because no resource-based policy allows the kms:{action} action"


def default_policy(account: str) -> str:
    """AWS's default key policy: the account's IAM decides (``kms:*`` to the root)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Id": "key-default-1",
            "Statement": [
                {
                    "Sid": "Enable IAM User Permissions",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        },
        indent=2,
    )


@dataclass(frozen=True)
class Grant:
    """A grant as the decision sees it: who it names, the operations it gives, and its
    constraints (``EncryptionContextSubset`` / ``EncryptionContextEquals``)."""

    grantee: str
    operations: frozenset[str]
    constraints: Mapping[str, Mapping[str, str]] | None = None


def grant_allows(
    grant: Grant, principal: iam.Principal, operation: str, context: Mapping[str, str] | None
) -> bool:
    """True when ``grant`` gives ``principal`` the ``operation``. ``context`` is the
    request's encryption context (``{}`` when the operation takes one and none was sent),
    or None for an operation without one: constraints apply only to the former, as on AWS.
    """
    if grant.grantee not in {principal.arn, principal.role_arn}:
        return False
    if operation not in grant.operations:
        return False
    if context is None or not grant.constraints:
        return True
    equals = grant.constraints.get("EncryptionContextEquals")
    if equals is not None and dict(context) != dict(equals):
        return False
    subset = grant.constraints.get("EncryptionContextSubset")
    return subset is None or all(context.get(k) == v for k, v in subset.items())


def key_access(
    request: iam.Request,
    identity: Sequence[iam.Policy],
    key_policy: iam.Policy,
    grants: Sequence[Grant],
    context: Mapping[str, str] | None = None,
) -> tuple[bool, str]:
    """``(allowed, why not)`` for ``request`` (``kms:<Operation>`` on a key), as KMS
    decides: no explicit Deny in the identity policies or the key policy, and then the
    key policy allows the caller directly, OR it allows the account (the "Enable IAM User
    Permissions" statement) AND an identity policy allows, OR a grant gives the operation
    to the caller (``context``: see :func:`grant_allows`). The account's root user has no
    identity policies and no shortcut: it is in when the key policy names it or its
    account.
    """
    principal = request.principal
    by_identity = iam.evaluate(request, identity, None)
    if by_identity.reason == "explicit-deny":
        return False, "with an explicit deny in an identity-based policy"
    account = request.resource_account

    def by_key_policy(who: iam.Principal) -> iam.Decision:
        return iam.evaluate(dataclasses.replace(request, principal=who), (), key_policy)

    direct = by_key_policy(iam.Principal(principal.arn, principal.account, is_root=False))
    if direct.reason == "explicit-deny":
        return False, "with an explicit deny in a resource-based policy"
    if direct.allowed:
        return True, ""
    root = f"arn:aws:iam::{principal.account}:root"
    delegated = by_key_policy(iam.Principal(root, principal.account, is_root=False)).allowed
    if delegated and principal.account == account and by_identity.allowed:
        return True, ""
    operation = request.action.split(":", 1)[-1]
    if any(grant_allows(g, principal, operation, context) for g in grants):
        return True, ""
    if delegated:
        return False, f"because no identity-based policy allows the {request.action} action"
    return False, f"because no resource-based policy allows the {request.action} action"


LOCKOUT_MESSAGE = "the new key policy will not allow you to update the key policy in the future"


def locks_out(policy: iam.Policy, asker: Asker, any_key_arn: str) -> bool:
    """The policy lockout safety check: True when ``policy`` would not let ``asker``
    put a key policy again (``any_key_arn``: the account's keys, ``key/*``)."""
    return not key_policy_decision(policy, asker, "PutKeyPolicy", any_key_arn)[0]
