"""Which host paths the API may name: the operator's allowed roots, minus what is denied,
and never the server's own data.

Who asks: any principal allowed ``RegisterResource`` (a source the server will read, as
its own user) or ``StartRestoreJob`` (a target the server will write). What it can reach:
only a path that, once resolved (symlinks and ``..``, by the ``realpath`` passed in), is

1. at or under one of the ``allowed`` roots (``allowed_paths`` in config.json);
2. not at, under or *above* a ``denied`` entry (``denied_paths``: a root, or a shell-like
   pattern matched per path component, ``*`` never crossing ``/``): a source containing
   ``/root/.ssh`` would back it up, a target containing it could overwrite it;
3. not at, under or above a ``protected`` location (the data directory, every local
   storage location, the root key file): whatever the lists say.

    >>> policy = Policy.build(["/home/u"], ["/home/u/.*"], ["/home/u/.local/sv"], _lexical)
    >>> check("/home/u/photos/../music", policy, _lexical)
    '/home/u/music'
    >>> refusal("/home/u/.ssh/id_rsa", policy)
    'is under the denied path /home/u/.*'
    >>> refusal("/home/u", policy)
    'contains the snowvault data directory or a vault storage location'
    >>> refusal("/etc", policy)
    "is not under an allowed path (allowed: /home/u; the server's allowed_paths in config.json)"

Pure: the only file-system question (what a path resolves to) is answered by the
``realpath`` argument (``os.path.realpath`` on the server; ``os.path.normpath`` for a
lexical-only view). Depends on :mod:`snowvault.core` only.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from snowvault.core.errors import InvalidInput, PermissionDenied

Realpath = Callable[[str], str]

_GLOB = frozenset("*?[")
_HOW_TO = "the server's allowed_paths in config.json"


class InvalidHostPath(InvalidInput):
    """invalid host path {path!r}: {detail}"""


class PathRefused(PermissionDenied):
    """host path {path!r} is refused: {reason}"""


def _lexical(path: str) -> str:
    return posixpath.normpath(path)


def resolve(path: object, realpath: Realpath) -> str:
    """The absolute, resolved form of a caller's ``path``; InvalidHostPath unless it is an
    absolute string without NUL bytes. ``realpath`` decides how far resolution goes:
    ``os.path.realpath`` follows symlinks (the server's view), ``os.path.normpath`` only
    folds ``.``/``..``/``//`` (a lexical view, e.g. for an IAM condition on the path).

    >>> resolve("/srv//data/../photos/", posixpath.normpath)
    '/srv/photos'
    """
    if not isinstance(path, str):
        raise InvalidHostPath(path=path, detail="must be a string")
    if "\x00" in path:
        raise InvalidHostPath(path=path, detail="contains a NUL byte")
    if not path.startswith("/"):
        raise InvalidHostPath(path=path, detail="must be an absolute path")
    resolved = realpath(path)
    # realpath keeps a leading "//" (POSIX leaves it implementation-defined); fold it.
    return "/" + resolved.lstrip("/") if resolved.startswith("//") else resolved


def _parts(path: str) -> tuple[str, ...]:
    return tuple(p for p in path.split("/") if p)


@dataclass(frozen=True)
class Entry:
    """A resolved root (every component literal) or a pattern (some components globs)."""

    text: str
    parts: tuple[str, ...]

    def relates(self, path_parts: tuple[str, ...]) -> bool:
        """True when the path is at, under or above this entry (component by component)."""
        return all(
            fnmatch.fnmatchcase(p, q) if _GLOB & set(q) else p == q
            for p, q in zip(path_parts, self.parts, strict=False)
        )

    def contains(self, path_parts: tuple[str, ...]) -> bool:
        """True when the path is at or under this entry."""
        return len(path_parts) >= len(self.parts) and self.relates(path_parts)

    @classmethod
    def of(cls, text: str, realpath: Realpath) -> Entry:
        """A root is resolved whole; a pattern's literal leading directories are resolved
        and its glob tail kept (``/home/*/.ssh`` stays as written if /home is no link)."""
        if not text.startswith("/") or "\x00" in text:
            raise InvalidHostPath(path=text, detail="a configured path must be absolute")
        parts = _parts(posixpath.normpath(text))
        first_glob = next((i for i, p in enumerate(parts) if _GLOB & set(p)), len(parts))
        head = resolve("/" + "/".join(parts[:first_glob]), realpath)
        full = _parts(head) + parts[first_glob:]
        return cls("/" + "/".join(full), full)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_NETWORKS: tuple[Network, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)
"""What ``allowed_networks`` is when config.json does not say: loopback only."""


def networks_of(texts: Iterable[str]) -> tuple[Network, ...]:
    """Configured networks (CIDR, or one address) parsed; InvalidInput names a bad one.

    >>> [str(n) for n in networks_of(["10.1.2.0/24", "::1", "192.168.1.7"])]
    ['10.1.2.0/24', '::1/128', '192.168.1.7/32']
    """
    out = []
    for text in texts:
        try:
            out.append(ipaddress.ip_network(str(text).strip(), strict=False))
        except ValueError as exc:
            raise InvalidInput(detail=f"allowed_networks: {text!r} is no network: {exc}") from exc
    return tuple(out)


@dataclass(frozen=True)
class Policy:
    """The resolved rule: allowed roots, denied entries, protected locations; and the
    networks a plugin may connect to (the network-reach rule,
    :mod:`snowvault.control.model.net_reach`)."""

    allowed: tuple[Entry, ...] = ()
    denied: tuple[Entry, ...] = ()
    protected: tuple[Entry, ...] = ()
    networks: tuple[Network, ...] = DEFAULT_NETWORKS

    @classmethod
    def build(
        cls,
        allowed: Iterable[str],
        denied: Iterable[str],
        protected: Iterable[str],
        realpath: Realpath,
        networks: Iterable[str] | None = None,
    ) -> Policy:
        """``networks`` None: loopback only (:data:`DEFAULT_NETWORKS`)."""
        return cls(
            tuple(Entry.of(p, realpath) for p in allowed),
            tuple(Entry.of(p, realpath) for p in denied),
            tuple(Entry.of(p, realpath) for p in protected),
            DEFAULT_NETWORKS if networks is None else networks_of(networks),
        )

    def describe(self) -> str:
        """One line for people: ``/root (except /root/.*)``, or ``nothing``."""
        if not self.allowed:
            return "nothing"
        text = ", ".join(e.text for e in self.allowed)
        if self.denied:
            text += f" (except {', '.join(e.text for e in self.denied)})"
        return text


NOTHING_ALLOWED = Policy()


def refusal(resolved: str, policy: Policy) -> str | None:
    """Why the resolved path is refused (a verb phrase: "is not under ..."), or None."""
    parts = _parts(resolved)
    for entry in policy.protected:
        if entry.contains(parts):
            return "is inside the snowvault data directory or a vault storage location"
        if entry.relates(parts):
            return "contains the snowvault data directory or a vault storage location"
    if not any(entry.contains(parts) for entry in policy.allowed):
        allowed = ", ".join(e.text for e in policy.allowed) or "none"
        return f"is not under an allowed path (allowed: {allowed}; {_HOW_TO})"
    for entry in policy.denied:
        if entry.contains(parts):
            return f"is under the denied path {entry.text}"
        if entry.relates(parts):
            return f"contains the denied path {entry.text}"
    return None


def check(path: object, policy: Policy, realpath: Realpath) -> str:
    """The resolved ``path`` when ``policy`` allows it; raises InvalidHostPath or
    PathRefused (naming the rule) otherwise."""
    resolved = resolve(path, realpath)
    reason = refusal(resolved, policy)
    if reason is None:
        return resolved
    subject = "it" if resolved == path else f"it resolves to {resolved!r}, which"
    raise PathRefused(path=path, reason=f"{subject} {reason}")


def default_rule(home: str) -> tuple[list[str], list[str]]:
    """What ``snowvault init`` stores without ``--allow-path``: the initialising user's home,
    except its hidden top-level entries (~/.ssh, ~/.config, ~/.local with the default data
    directory).

    A home of ``/`` (service accounts) would allow the whole host: then nothing is allowed
    and the operator names the trees.

    >>> default_rule("/root"), default_rule("/")
    ((['/root'], ['/root/.*']), ([], []))
    """
    home = posixpath.normpath(home)
    if home in ("/", "//", ".") or not home.startswith("/"):
        return [], []
    return [home], [posixpath.join(home, ".*")]
