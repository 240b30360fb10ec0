"""Authorization requests: who asks for which action on which resource, and the
condition keys the request carries (:func:`request_context`).

Pure; depends on :mod:`snowvault.core` only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

_SESSION_ARN_RE = re.compile(r"^arn:([^:]+):sts::(\d{12}):assumed-role/([^/]+)/.+$")


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
