"""Recovery point manifests: what one backup holds, as a JSON-able dict.

The repository stores the dict (encrypted) under ``recovery-points/<id>``; the id is not
part of the body. Time is passed in, never read here.

    >>> from datetime import UTC, datetime
    >>> m = Manifest(time=datetime(2026, 1, 1, tzinfo=UTC), hostname="h", paths=["/d"],
    ...              kind="directory", tree="ab" * 32)
    >>> Manifest.from_dict(m.to_dict()) == m
    True

Depends only on the standard library and core errors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any, Literal

from snowvault.core import errors as core_errors
from snowvault.core.clock import utc
from snowvault.engine import errors

MANIFEST_VERSION = 1

Kind = Literal["directory", "stream"]


@dataclass(frozen=True)
class Summary:
    files_new: int = 0
    files_changed: int = 0
    files_unchanged: int = 0
    dirs: int = 0
    other: int = 0
    bytes_read: int = 0
    bytes_added: int = 0
    total_size: int = 0
    duration_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Summary:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in known})


@dataclass(frozen=True)
class ManifestError:
    path: str
    error: str


@dataclass(frozen=True)
class Manifest:
    time: datetime
    hostname: str
    paths: list[str]
    kind: str
    tree: str
    parent: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    partial: bool = False
    errors: list[ManifestError] = field(default_factory=list)
    summary: Summary = field(default_factory=Summary)
    metadata: dict[str, Any] = field(default_factory=dict)
    root: dict[str, Any] | None = None
    """The backed-up directory's own entry (mode, owner, mtime, xattrs) as a tree node
    dict, when one directory was backed up: a full restore gives the target the same."""
    version: int = MANIFEST_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "time": utc(self.time).isoformat().replace("+00:00", "Z"),
            "hostname": self.hostname,
            "paths": list(self.paths),
            "kind": self.kind,
            "tree": self.tree,
            "parent": self.parent,
            "tags": dict(self.tags),
            "partial": self.partial,
            "errors": [{"path": e.path, "error": e.error} for e in self.errors],
            "summary": self.summary.to_dict(),
            "metadata": dict(self.metadata),
        } | ({"root": dict(self.root)} if self.root is not None else {})

    @classmethod
    def from_dict(cls, doc: dict[str, Any], name: str = "manifest") -> Manifest:
        try:
            version = int(doc.get("version", 0))
            if version != MANIFEST_VERSION:
                raise ValueError(f"unsupported manifest version {version}")
            return cls(
                time=datetime.fromisoformat(str(doc["time"]).replace("Z", "+00:00")),
                hostname=str(doc["hostname"]),
                paths=[str(p) for p in doc["paths"]],
                kind=str(doc["kind"]),
                tree=str(doc["tree"]),
                parent=doc.get("parent"),
                tags={str(k): str(v) for k, v in doc.get("tags", {}).items()},
                partial=bool(doc.get("partial", False)),
                errors=[
                    ManifestError(str(e["path"]), str(e["error"])) for e in doc.get("errors", [])
                ],
                summary=Summary.from_dict(doc.get("summary", {})),
                metadata=dict(doc.get("metadata", {})),
                root=dict(doc["root"]) if doc.get("root") is not None else None,
                version=version,
            )
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise errors.IntegrityError(name=name, detail=f"malformed manifest: {exc}") from exc


@dataclass(frozen=True)
class BackupResult:
    """What a finished backup returns: the new recovery point's id and its manifest."""

    rp_id: str
    manifest: Manifest


# ---------------------------------------------------------------- per-source resolution


def source_of(doc: dict[str, Any]) -> str:
    """What a recovery point (a manifest dict) is a backup of: its ``metadata.source``
    (``stdin:NAME`` for a stream) or its paths joined by spaces.

    >>> source_of({"paths": ["/srv/data"], "metadata": {}})
    '/srv/data'
    >>> source_of({"paths": ["db.sql"], "metadata": {"source": "stdin:db.sql"}})
    'stdin:db.sql'
    """
    source = (doc.get("metadata") or {}).get("source")
    if isinstance(source, str) and source:
        return source
    return " ".join(str(p) for p in doc.get("paths") or [])


def is_of(doc: dict[str, Any], source: str) -> bool:
    """Whether the recovery point ``doc`` is a backup of ``source`` (a source or one path)."""
    return source == source_of(doc) or source in [str(p) for p in doc.get("paths") or []]


def latest(pairs: list[tuple[str, dict[str, Any]]], source: str | None) -> str:
    """The id of the newest recovery point of ``source`` among ``(id, manifest)`` pairs
    (oldest first). With no source, the newest one — only when every recovery point is
    of the same source: a repository holding a directory and a stdin dump has no single
    "latest", and guessing restored the wrong one.

    >>> stdin = {"paths": ["x"], "metadata": {"source": "stdin:x"}}
    >>> pairs = [("a", {"paths": ["/d"]}), ("b", stdin)]
    >>> latest(pairs, "/d"), latest(pairs, "stdin:x")
    ('a', 'b')
    """
    if source is not None:
        found = [rp_id for rp_id, doc in pairs if is_of(doc, source)]
        if not found:
            raise errors.RecoveryPointNotFound(id=f"latest of {source}")
        return found[-1]
    if not pairs:
        raise errors.RecoveryPointNotFound(id="latest")
    sources = list(dict.fromkeys(source_of(doc) for _, doc in pairs))
    if len(sources) > 1:
        raise core_errors.InvalidInput(
            detail=f"'latest' is ambiguous: this repository holds backups of {len(sources)} "
            f"sources ({', '.join(sources)}); add --path SOURCE"
        )
    return pairs[-1][0]


def inner_path(doc: dict[str, Any], path: str) -> str:
    """``path`` inside the recovery point: an original absolute path (at or under a
    backed-up path) becomes the path inside it; anything else is taken as already inside.

    >>> inner_path({"paths": ["/srv/data"], "kind": "directory"}, "/srv/data/etc/x")
    '/etc/x'
    >>> inner_path({"paths": ["/a/one", "/b/two"], "kind": "directory"}, "/b/two/x")
    '/two/x'
    >>> inner_path({"paths": ["/srv/data"], "kind": "directory"}, "/etc")
    '/etc'
    """
    paths = [str(p).rstrip("/") or "/" for p in doc.get("paths") or []]
    one_dir = len(paths) == 1 and doc.get("kind") == "directory"
    for backed_up in paths:
        if not backed_up.startswith("/"):
            continue
        if path.rstrip("/") == backed_up or path.startswith(backed_up.rstrip("/") + "/"):
            rest = path[len(backed_up) :].strip("/")
            if one_dir:  # its root tree is the directory's contents
                return "/" + rest
            name = backed_up.rsplit("/", 1)[-1] or "root"
            return "/" + "/".join(p for p in (name, rest) if p)
    return path
