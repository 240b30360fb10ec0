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
