"""Agent host names and the worker label of their jobs (docs/design/agents.md).

    >>> label("web-1")
    'agent:web-1'
    >>> host_of("agent:web-1"), host_of("gpu")
    ('web-1', None)

A host name is 1-63 letters, digits, ``.`` or ``-``, starting with a letter or digit: it
becomes part of a principal ARN and a queue label, so it carries no ``/``, ``:`` or
spaces.
"""

from __future__ import annotations

import re

from snowvault.core.errors import InvalidInput

LABEL_PREFIX = "agent:"
"""Jobs of resources registered with ``--host NAME`` carry ``worker_label = agent:NAME``;
the server's own workers never take such a label."""

_HOST_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$")


def check_host(host: object) -> str:
    """``host`` if it is a valid agent host name, else :class:`InvalidInput`."""
    if not isinstance(host, str) or not _HOST_RE.match(host):
        raise InvalidInput(
            detail=f"Host {host!r} is not valid: 1-63 letters, digits, '.' or '-', "
            "starting with a letter or digit"
        )
    return host


def label(host: str) -> str:
    """The worker label of ``host``'s jobs."""
    return LABEL_PREFIX + check_host(host)


def host_of(worker_label: str | None) -> str | None:
    """The agent host a worker label names (None: not an agent's label)."""
    if worker_label is None or not worker_label.startswith(LABEL_PREFIX):
        return None
    return check_host(worker_label[len(LABEL_PREFIX) :])
