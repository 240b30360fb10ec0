"""Which network hosts a plugin may connect to: the network-reach rule.

Who asks: any principal allowed ``RegisterResource`` (a database, a Redis, an S3
endpoint the server will connect to with the credentials it is given and read from) or
``StartRestoreJob`` (a server the restore will write into). What it can reach: only a
host whose EVERY resolved address lies inside one of the operator's allowed networks
(``allowed_networks`` in config.json, the ``networks`` of
:class:`snowvault.control.model.host_paths.Policy`; loopback only by default). A name
resolving to one allowed and one refused address is refused (a resolver could hand out
either); the caller connects to an address this returned, never to the name again (a
second lookup could answer differently: DNS rebinding). Nothing is contacted before the
verdict, so a refused host is no probe of what listens there.

    >>> from snowvault.control.model import host_paths
    >>> policy = host_paths.Policy.build([], [], [], _same, ["10.0.0.0/8"])
    >>> check("10.1.2.3", 5432, policy, _literal)
    ['10.1.2.3']
    >>> refusal(["10.1.2.3", "192.168.0.9"], policy)[:59]
    'resolves to 192.168.0.9, which is not in an allowed network'

Pure but for ``resolve`` (``socket.getaddrinfo`` on the server; tests pass a table).
Depends on :mod:`snowvault.core` and the host-path policy only.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from typing import Any

from snowvault.control.model import host_paths
from snowvault.core.errors import InvalidInput, PermissionDenied

Resolve = Callable[..., Sequence[tuple[Any, ...]]]
"""``socket.getaddrinfo``-shaped: (host, port) -> [(family, type, proto, name, sockaddr)]."""

_HOW_TO = "the server's allowed_networks in config.json"
_MAX_HOST = 253


class NetworkRefused(PermissionDenied):
    """network host {host!r} is refused: {reason}"""


def _same(path: str) -> str:
    return path


def _literal(host: str, port: int, *args: Any) -> list[tuple[Any, ...]]:
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (host, port))]


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    addr = ipaddress.ip_address(text.split("%", 1)[0])  # fe80::1%eth0: the scope aside
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped  # ::ffff:10.0.0.1 reaches 10.0.0.1
    return addr


def allowed(address: str, policy: host_paths.Policy) -> bool:
    """True when ``address`` (an IP literal) is inside one of the policy's networks."""
    addr = _address(address)
    return any(addr.version == net.version and addr in net for net in policy.networks)


def refusal(addresses: Sequence[str], policy: host_paths.Policy) -> str | None:
    """Why a host resolving to ``addresses`` is refused (a verb phrase), or None."""
    if not addresses:
        return "resolves to no address"
    for address in addresses:
        if not allowed(address, policy):
            nets = ", ".join(str(n) for n in policy.networks) or "none"
            return (
                f"resolves to {address}, which is not in an allowed network "
                f"(allowed: {nets}; {_HOW_TO})"
            )
    return None


def _valid(host: object, port: object) -> tuple[str, int]:
    if not isinstance(host, str) or not host or len(host) > _MAX_HOST:
        raise InvalidInput(detail=f"host {host!r} must be a name or address of 1-253 characters")
    if any(c in host for c in "\x00/ @?#") or any(ord(c) < 32 for c in host):
        raise InvalidInput(detail=f"host {host!r} is not a host name or address")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise InvalidInput(detail=f"port {port!r} must be a number from 1 to 65535")
    return host.strip("[]"), port


def check(
    host: object, port: object, policy: host_paths.Policy, resolve: Resolve = socket.getaddrinfo
) -> list[str]:
    """The resolved addresses of ``host`` (deduplicated, resolver order) when every one of
    them is allowed; raises InvalidInput for a malformed host or port or a name that does
    not resolve, NetworkRefused (naming the rule) for an address outside the networks."""
    name, number = _valid(host, port)
    try:
        infos = resolve(name, number, 0, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise InvalidInput(detail=f"host {name!r} does not resolve ({exc})") from exc
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    reason = refusal(addresses, policy)
    if reason is not None:
        raise NetworkRefused(host=name, reason=f"it {reason}")
    return addresses
