"""Agent host names and the worker label of their jobs (docs/design/agents.md).

    >>> label("111122223333", "web-1")
    'agent:111122223333:web-1'
    >>> parse("agent:111122223333:web-1"), parse("gpu")
    (('111122223333', 'web-1'), None)
    >>> scoped("agent:web-1", "111122223333")
    'agent:111122223333:web-1'

A host name is 1-63 letters, digits, ``.`` or ``-``, starting with a letter or digit: it
becomes part of a principal ARN and a queue label, so it carries no ``/``, ``:`` or
spaces. The label carries the account: two tenants may both name a host ``web-1``, and
one tenant's agent must never run (read a host path for) the other's jobs. Callers name
a host as ``agent:HOST`` (``resource add --host HOST``); :func:`scoped` puts it in the
caller's account and refuses a caller naming an account itself.
"""

from __future__ import annotations

import re

from snowvault.core.errors import InvalidInput

LABEL_PREFIX = "agent:"
"""Jobs of resources on an agent's host carry ``worker_label = agent:ACCOUNT:HOST``; the
server's own workers never take such a label."""

_HOST_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$")
_ACCOUNT_RE = re.compile(r"^[0-9]{12}$")


def check_host(host: object) -> str:
    """``host`` if it is a valid agent host name, else :class:`InvalidInput`."""
    if not isinstance(host, str) or not _HOST_RE.match(host):
        raise InvalidInput(
            detail=f"Host {host!r} is not valid: 1-63 letters, digits, '.' or '-', "
            "starting with a letter or digit"
        )
    return host


def label(account_id: str, host: str) -> str:
    """The worker label of ``host``'s jobs in ``account_id``."""
    return f"{LABEL_PREFIX}{account_id}:{check_host(host)}"


def is_agent_label(worker_label: str | None) -> bool:
    return worker_label is not None and worker_label.startswith(LABEL_PREFIX)


def parse(worker_label: str | None) -> tuple[str, str] | None:
    """(account, host) of an agent's label; None for any other label."""
    if not is_agent_label(worker_label):
        return None
    assert worker_label is not None
    account, _, host = worker_label[len(LABEL_PREFIX) :].partition(":")
    if not _ACCOUNT_RE.match(account):
        raise InvalidInput(detail=f"not an agent label: {worker_label!r}")
    return account, check_host(host)


def restore_label(
    worker_label: str | None, *, point_account: str, caller_account: str
) -> str | None:
    """The worker label of a restore job: the agent's, when the caller restores its own
    point of a resource on a host of its own account; None (the server restores it)
    for any other point, such as a copy in another account of an agent's point (its
    restores are the copy owner's, never that agent's). A malformed agent label raises
    InvalidInput. The one rule for StartRestoreJob and its authorization alike.

    >>> restore_label("agent:111111111111:h1", point_account="111111111111",
    ...               caller_account="111111111111")
    'agent:111111111111:h1'
    >>> restore_label("agent:111111111111:h1", point_account="222222222222",
    ...               caller_account="222222222222") is None
    True
    """
    if point_account != caller_account:
        return None
    owner = parse(worker_label)
    if owner is None or owner[0] != caller_account:
        return None
    return worker_label


def scoped(worker_label: str | None, account_id: str) -> str | None:
    """A caller's ``WorkerLabel``: ``agent:HOST`` becomes ``agent:ACCOUNT:HOST`` in the
    caller's account; any other ``agent:`` form is refused (a caller cannot aim its jobs
    at another account's agent); other labels pass unchanged. An empty label, or one
    that spells the agent prefix in other letters (``AGENT:web-1``), is refused: no
    worker would ever claim its jobs, which would wait until their start window ends."""
    if worker_label is not None and not worker_label.strip():
        raise InvalidInput(detail="WorkerLabel must not be empty (leave it out for none)")
    if not is_agent_label(worker_label):
        if worker_label is not None and worker_label.lower().startswith(LABEL_PREFIX):
            raise InvalidInput(detail=f"WorkerLabel {worker_label!r}: write agent:HOST")
        return worker_label
    assert worker_label is not None
    host = worker_label[len(LABEL_PREFIX) :]
    if ":" in host:
        raise InvalidInput(detail="WorkerLabel agent:HOST names a host of your own account")
    return label(account_id, host)
