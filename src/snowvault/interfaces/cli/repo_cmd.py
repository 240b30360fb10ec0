"""``snowvault repo``: offline tools over one vault repository (disaster recovery).

These act on the repository directly, with no server or catalog: a passphrase (or a
recovery key exported by the server) is all they need. Every command has ``--json``.
The engine modules are imported inside each command (registering the group stays cheap);
nothing here may import boto3 or SQLAlchemy (a test checks ``repo --help``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from snowvault.core.clock import SystemClock
from snowvault.core.errors import InvalidInput
from snowvault.interfaces.cli import render

if TYPE_CHECKING:
    from snowvault.engine import prune
    from snowvault.engine.backends.base import Backend
    from snowvault.engine.crypto import keyslots
    from snowvault.engine.repository import Repository

CLOCK = SystemClock()


def _password(password_file: str | None) -> str:
    if password_file:
        try:
            with open(password_file, encoding="utf-8") as fh:
                return fh.readline().rstrip("\r\n")
        except OSError as exc:
            raise InvalidInput(detail=f"cannot read password file: {exc.strerror}") from exc
        except UnicodeDecodeError:
            raise InvalidInput(detail="the password file is not UTF-8 text") from None
    value = os.environ.get("SNOWVAULT_PASSWORD")
    if value is None:
        raise InvalidInput(detail="no passphrase: set SNOWVAULT_PASSWORD or use --password-file")
    return value


def _repo_options(fn: Any) -> Any:
    fn = click.option(
        "--password-file", type=click.Path(dir_okay=False), help="Read the passphrase from a file."
    )(fn)
    fn = click.option(
        "--repo",
        "repo_url",
        envvar="SNOWVAULT_REPO",
        required=True,
        help="Repository URL: a path, file://..., or s3://bucket/prefix.",
    )(fn)
    return fn


def _json_option(fn: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(fn)


@dataclass(frozen=True)
class _Opening:
    """A store reached and its passphrase's key being derived on a thread."""

    backend: Backend
    password: str
    derived: keyslots.Derivation


def _start_open(repo_url: str, password_file: str | None) -> _Opening:
    """Reach the store and start deriving the passphrase's key (scrypt, ~0.13 s of a
    ~0.35 s no-change backup of the media set) on a thread, so that what the command
    imports before it opens the repository runs meanwhile: scrypt releases the GIL."""
    from snowvault.engine.backends.url import open_backend
    from snowvault.engine.crypto import keyslots

    backend = open_backend(repo_url)
    password = _password(password_file)

    def read_slots() -> list[bytes]:
        return [backend.get(info.name) for info in backend.list("keys/")]

    return _Opening(backend, password, keyslots.Derivation(password, read_slots))


@contextmanager
def _open(
    repo_url: str,
    password_file: str | None,
    *,
    load_index: bool = True,
    opening: _Opening | None = None,
) -> Iterator[Repository]:
    """The repository; ``load_index=False`` for a command whose lock loads it (reading
    every index segment twice was a no-change backup's largest single cost). ``opening``:
    begun by :func:`_start_open` before the command's own imports."""
    if opening is None:
        opening = _start_open(repo_url, password_file)
    from snowvault.engine.repository import Repository

    backend = opening.backend
    repo = Repository.open(
        backend, password=opening.password, derived=opening.derived, load_index=load_index
    )
    try:
        yield repo
    finally:
        repo.close()
        backend.close()


@click.group()
def repo() -> None:
    """Work on a vault repository directly, without the server."""


@repo.command()
@_repo_options
@_json_option
def init(repo_url: str, password_file: str | None, as_json: bool) -> None:
    """Create a new, empty repository."""
    from snowvault.engine.backends.url import open_backend
    from snowvault.engine.repository import Repository

    backend = open_backend(repo_url)
    created = Repository.init(backend, password=_password(password_file))
    created.close()
    render.result(
        as_json,
        {"repository": repo_url, "id": created.config.id},
        f"created repository {created.config.id[:12]} at {repo_url}",
    )


@repo.command()
@_repo_options
@_json_option
@click.argument("paths", nargs=-1)
@click.option("--stdin", "stdin_name", metavar="NAME", help="Back up standard input as file NAME.")
@click.option("--exclude", "excludes", multiple=True, help="gitignore-style pattern (repeatable).")
@click.option("--exclude-file", type=click.Path(exists=True, dir_okay=False))
@click.option("--one-file-system", is_flag=True, help="Do not cross file-system boundaries.")
@click.option("--parent", help="Parent recovery point (default: latest of the same paths).")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE")
def backup(
    repo_url: str,
    password_file: str | None,
    as_json: bool,
    paths: tuple[str, ...],
    stdin_name: str | None,
    excludes: tuple[str, ...],
    exclude_file: str | None,
    one_file_system: bool,
    parent: str | None,
    tags: tuple[str, ...],
) -> None:
    """Back up PATHS (or standard input with --stdin NAME) as a new recovery point."""
    if bool(paths) == bool(stdin_name):
        raise InvalidInput(detail="give PATHS to back up, or --stdin NAME (not both)")
    patterns = list(excludes)
    if exclude_file:
        with open(exclude_file, encoding="utf-8") as fh:
            patterns += [line.rstrip("\n") for line in fh if line.strip()]
    tag_map = render.parse_tags(tags)
    opening = _start_open(repo_url, password_file)
    from snowvault.engine import archiver, locks  # while the key is derived

    with (
        _open(repo_url, password_file, load_index=False, opening=opening) as repository,
        render.progress(as_json) as report,
        locks.locked_repository(repository, CLOCK, exclusive=False),
    ):
        if stdin_name:
            parent_id = _parent(repository, parent, [f"stdin:{stdin_name}"], as_json)
            result = archiver.backup_stream(
                repository,
                stdin_name,
                sys.stdin.buffer,
                now=CLOCK.now(),
                parent=parent_id,
                progress=report,
                tags=tag_map,
                metadata={"source": f"stdin:{stdin_name}"},
            )
        else:
            abs_paths = [os.path.abspath(p) for p in paths]
            parent_id = _parent(repository, parent, abs_paths, as_json)
            result = archiver.backup_paths(
                repository,
                list(paths),
                now=CLOCK.now(),
                parent=parent_id,
                excludes=patterns,
                one_file_system=one_file_system,
                progress=report,
                tags=tag_map,
            )
    summary = result.manifest.summary
    doc = {
        "message_type": "summary",
        "id": result.rp_id,
        "parent": parent_id,
        "partial": result.manifest.partial,
        "errors": [{"path": e.path, "error": e.error} for e in result.manifest.errors],
        **summary.to_dict(),
    }
    for err in result.manifest.errors:
        render.warn(as_json, f"skipped {err.path}: {err.error}")
    render.result(
        as_json,
        doc,
        f"recovery point {result.rp_id[:12]} saved"
        + (" (PARTIAL: some files could not be read)" if result.manifest.partial else "")
        + f"\n  files: {summary.files_new} new, {summary.files_changed} changed, "
        f"{summary.files_unchanged} unchanged; {summary.dirs} directories"
        + f"\n  read {render.size(summary.bytes_read)}, added {render.size(summary.bytes_added)}"
        f" to the repository, in {summary.duration_seconds:.1f}s",
    )
    if result.manifest.partial:
        sys.exit(3)


def _damaged_warner(as_json: bool) -> Callable[[str, Exception], None]:
    """Report a damaged manifest and go on: one bad recovery point must not stop backups
    or hide the others (``check`` names it; prune still refuses to run past it)."""
    return lambda rp_id, exc: render.warn(as_json, f"skipping recovery point {rp_id[:12]}: {exc}")


def _parent(
    repository: Repository, explicit: str | None, paths: list[str], as_json: bool
) -> str | None:
    if explicit:
        return repository.resolve(explicit)
    same = [
        rp_id
        for rp_id, m in repository.manifests(_damaged_warner(as_json))
        if m.get("paths") == paths or (m.get("metadata") or {}).get("source") == paths[0]
    ]
    return same[-1] if same else None


def _source(path: str | None) -> str | None:
    """``--path`` as the backup recorded it: ``stdin:NAME`` as is, a path made absolute."""
    if path is None or path.startswith("stdin:"):
        return path
    return os.path.abspath(path)


def _resolve(repository: Repository, ref: str, path: str | None, as_json: bool) -> str:
    """An id, a unique prefix, or ``latest`` — of ``path`` when given (see
    :func:`snapshots.latest`: without it, only a one-source repository has a latest)."""
    from snowvault.engine import snapshots

    if ref != "latest":
        return repository.resolve(ref)
    pairs = repository.manifests(_damaged_warner(as_json))
    return snapshots.latest(pairs, _source(path))


def _path_option(fn: Any) -> Any:
    return click.option(
        "--path",
        "source_path",
        metavar="SOURCE",
        help="With 'latest': the newest recovery point of this backed-up path (or stdin:NAME).",
    )(fn)


@repo.command("recovery-points")
@_repo_options
@_json_option
def recovery_points(repo_url: str, password_file: str | None, as_json: bool) -> None:
    """List recovery points, oldest first."""
    with _open(repo_url, password_file) as repository:
        rows = [
            {
                "id": rp_id,
                "time": m.get("time"),
                "hostname": m.get("hostname"),
                "paths": m.get("paths"),
                "kind": m.get("kind"),
                "partial": m.get("partial", False),
                "size": (m.get("summary") or {}).get("total_size"),
                "tags": m.get("tags") or {},
            }
            for rp_id, m in repository.manifests(_damaged_warner(as_json))
        ]
    render.table(
        as_json,
        rows,
        [
            ("ID", lambda r: r["id"][:12]),
            ("TIME", lambda r: r["time"]),
            ("HOST", lambda r: r["hostname"]),
            ("SIZE", lambda r: render.size(r["size"] or 0)),
            ("PATHS", lambda r: " ".join(r["paths"] or [])),
        ],
    )


@repo.command("ls")
@_repo_options
@_json_option
@click.argument("rp_ref")
@click.argument("path", default="/")
@click.option("-r", "--recursive", is_flag=True)
@_path_option
def ls_cmd(
    repo_url: str,
    password_file: str | None,
    as_json: bool,
    rp_ref: str,
    path: str,
    recursive: bool,
    source_path: str | None,
) -> None:
    """List the entries of PATH in a recovery point (RP_REF: id, prefix or 'latest').

    PATH is a path inside the recovery point, or the original absolute path on the
    backed-up machine (``/srv/data/etc`` in a backup of ``/srv/data``)."""
    from snowvault.engine import browse, snapshots

    with _open(repo_url, password_file) as repository:
        rp_id = _resolve(repository, rp_ref, source_path, as_json)
        inside = snapshots.inner_path(repository.load_manifest(rp_id), path)
        entries = browse.ls(repository, rp_id, inside, recursive)
    rows = [
        {
            "path": e.path,
            "type": e.type,
            "size": e.size,
            "mode": oct(e.mode),
            "mtime": e.mtime.isoformat(),
        }
        for e in entries
    ]
    render.table(
        as_json,
        rows,
        [
            ("MODE", lambda r: r["mode"]),
            ("SIZE", lambda r: render.size(r["size"])),
            ("MTIME", lambda r: r["mtime"][:19]),
            ("TYPE", lambda r: r["type"]),
            ("PATH", lambda r: r["path"]),
        ],
    )


@repo.command()
@_repo_options
@_json_option
@click.argument("rp_a")
@click.argument("rp_b")
@_path_option
def diff(
    repo_url: str,
    password_file: str | None,
    as_json: bool,
    rp_a: str,
    rp_b: str,
    source_path: str | None,
) -> None:
    """Show what changed from recovery point RP_A to RP_B."""
    from snowvault.engine import browse

    with _open(repo_url, password_file) as repository:
        a = _resolve(repository, rp_a, source_path, as_json)
        b = _resolve(repository, rp_b, source_path, as_json)
        changes = browse.diff(repository, a, b)
    rows = [{"change": c.kind, "path": c.path} for c in changes]
    render.table(as_json, rows, [("", lambda r: r["change"]), ("PATH", lambda r: r["path"])])


@repo.command()
@_repo_options
@_json_option
@click.argument("rp_ref")
@click.argument("target")
@click.option("--include", "includes", multiple=True, help="Restore only this path (repeatable).")
@click.option("--overwrite", is_flag=True, help="Replace files that already exist in TARGET.")
@_path_option
def restore(
    repo_url: str,
    password_file: str | None,
    as_json: bool,
    rp_ref: str,
    target: str,
    includes: tuple[str, ...],
    overwrite: bool,
    source_path: str | None,
) -> None:
    """Restore a recovery point's contents into TARGET (RP_REF: id, prefix or 'latest';
    --include takes paths inside it or original absolute paths)."""
    from snowvault.engine import restorer, snapshots

    with _open(repo_url, password_file) as repository, render.progress(as_json) as report:
        rp_id = _resolve(repository, rp_ref, source_path, as_json)
        manifest = repository.load_manifest(rp_id)
        inside = [snapshots.inner_path(manifest, i) for i in includes]
        result = restorer.restore(
            repository, rp_id, target, include=inside, overwrite=overwrite, progress=report
        )
    doc = {
        "message_type": "summary",
        "id": rp_id,
        "target": target,
        "files": result.files,
        "bytes": result.bytes,
        "errors": [{"path": e.path, "error": e.error} for e in result.errors],
    }
    for err in result.errors:
        render.warn(as_json, f"{err.path}: {err.error}")
    render.result(
        as_json,
        doc,
        f"restored {result.files} files ({render.size(result.bytes)}) "
        f"from {rp_id[:12]} to {target}",
    )
    if result.errors:
        sys.exit(3)


@repo.command("check")
@_repo_options
@_json_option
@click.option("--read-data", is_flag=True, help="Read, authenticate and hash every blob.")
@click.option(
    "--subset",
    type=click.FloatRange(0.01, 100.0),
    default=100.0,
    help="With --read-data: percent of packs to read.",
)
def check_cmd(
    repo_url: str, password_file: str | None, as_json: bool, read_data: bool, subset: float
) -> None:
    """Verify the repository's structure (and with --read-data, its data)."""
    from snowvault.engine import check

    with _open(repo_url, password_file) as repository:
        report = check.check(repository, read_data=read_data, subset=subset)
    doc = {
        "ok": report.ok,
        "problems": [
            {"object": p.object, "detail": p.detail, "recovery_points": p.recovery_points}
            for p in report.problems
        ],
        "warnings": report.warnings,
        "packs": report.packs,
        "packs_read": report.packs_read,
        "recovery_points": report.recovery_points,
    }
    lines = [
        f"checked {report.recovery_points} recovery points, {report.packs} packs"
        + (f", read {report.packs_read} packs" if read_data else "")
    ]
    lines += [f"warning: {w}" for w in report.warnings]
    lines += [f"DAMAGED {p}" for p in report.problems]
    lines.append("no problems found" if report.ok else f"{len(report.problems)} problems found")
    render.result(as_json, doc, "\n".join(lines))
    if not report.ok:
        sys.exit(8)


@repo.command()
@_repo_options
@_json_option
@click.argument("rp_refs", nargs=-1, required=True)
@click.option("--prune", "then_prune", is_flag=True, help="Prune right after.")
def forget(
    repo_url: str,
    password_file: str | None,
    as_json: bool,
    rp_refs: tuple[str, ...],
    then_prune: bool,
) -> None:
    """Remove recovery points (their data goes at the next prune)."""
    from snowvault.engine import prune

    with _open(repo_url, password_file) as repository:
        chosen = [_resolve(repository, r, None, as_json) for r in rp_refs]
        removed = prune.forget(repository, chosen)
        pruned = prune.prune(repository, CLOCK) if then_prune else None
    doc: dict[str, Any] = {"removed": removed}
    if pruned is not None:
        doc["prune"] = _prune_doc(pruned)
    render.result(as_json, doc, "\n".join(f"removed {r[:12]}" for r in removed))


@repo.command("prune")
@_repo_options
@_json_option
@click.option("--dry-run", is_flag=True)
def prune_cmd(repo_url: str, password_file: str | None, as_json: bool, dry_run: bool) -> None:
    """Delete data no recovery point needs and repack half-empty packs."""
    from snowvault.engine import prune

    with _open(repo_url, password_file) as repository:
        report = prune.prune(repository, CLOCK, dry_run=dry_run)
    doc = _prune_doc(report)
    render.result(
        as_json,
        doc,
        f"{'would delete' if dry_run else 'deleted'} {report.packs_deleted} packs, "
        f"repacked {report.packs_repacked}, freed {render.size(report.bytes_freed)}"
        + (
            f"; kept {len(report.skipped_locked)} objects under retention"
            if report.skipped_locked
            else ""
        ),
    )


def _prune_doc(report: prune.PruneReport) -> dict[str, Any]:
    return {
        "dry_run": report.dry_run,
        "recovery_points": report.recovery_points,
        "packs_before": report.packs_before,
        "packs_deleted": report.packs_deleted,
        "packs_repacked": report.packs_repacked,
        "packs_written": report.packs_written,
        "bytes_freed": report.bytes_freed,
        "skipped_locked": report.skipped_locked,
    }


@repo.command()
@_repo_options
@_json_option
def stats(repo_url: str, password_file: str | None, as_json: bool) -> None:
    """Sizes: stored bytes, blobs, packs, and the deduplicated/compressed ratio."""
    with _open(repo_url, password_file) as repository:
        pack_sizes = dict(repository.list_packs())
        blobs = list(repository.master_index.items())
        manifests = repository.manifests()
    raw = sum(loc.raw_length for _, loc in blobs)
    logical = sum(int((m.get("summary") or {}).get("total_size") or 0) for _, m in manifests)
    stored = sum(pack_sizes.values())
    doc = {
        "recovery_points": len(manifests),
        "packs": len(pack_sizes),
        "blobs": len(blobs),
        "stored_bytes": stored,
        "unique_raw_bytes": raw,
        "logical_bytes": logical,
        "ratio": round(logical / stored, 3) if stored else None,
    }
    render.result(
        as_json,
        doc,
        f"{len(manifests)} recovery points holding {render.size(logical)}\n"
        f"{len(blobs)} unique blobs ({render.size(raw)}) in {len(pack_sizes)} packs"
        f" = {render.size(stored)} stored"
        + (f" (ratio {logical / stored:.2f}x)" if stored else ""),
    )
