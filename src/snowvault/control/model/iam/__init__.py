"""IAM policy documents and their evaluation, as AWS IAM does it.

Pure rules: parse a policy document (identity-based, or resource-based such as a backup
vault access policy) into frozen dataclasses, then decide a :class:`Request` against the
identity policies of the caller and the resource's policy. No I/O, no clock: the time
the conditions see (``aws:CurrentTime``, ``aws:EpochTime``) is ``Request.now``.
Depends on nothing but :mod:`snowvault.core`.

The package: :mod:`.documents` (parse a policy), :mod:`.conditions` (the condition
operators), :mod:`.requests` (who asks for what, the context keys), :mod:`.evaluation`
(the decision). Callers use the names re-exported here: ``iam.evaluate(...)``.

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

from snowvault.control.model.iam.conditions import (
    Condition,
    condition_holds,
    glob_match,
    parse_date,
)
from snowvault.control.model.iam.documents import (
    VERSIONS,
    Effect,
    Policy,
    PolicyKind,
    PrincipalSpec,
    Statement,
    parse_policy,
)
from snowvault.control.model.iam.evaluation import (
    Decision,
    Reason,
    Source,
    access_denied_message,
    action_matches,
    evaluate,
    resource_matches,
)
from snowvault.control.model.iam.requests import ContextValue, Principal, Request, request_context

__all__ = [
    "VERSIONS",
    "Condition",
    "ContextValue",
    "Decision",
    "Effect",
    "Policy",
    "PolicyKind",
    "Principal",
    "PrincipalSpec",
    "Reason",
    "Request",
    "Source",
    "Statement",
    "access_denied_message",
    "action_matches",
    "condition_holds",
    "evaluate",
    "glob_match",
    "parse_date",
    "parse_policy",
    "request_context",
    "resource_matches",
]
