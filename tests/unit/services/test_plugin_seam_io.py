"""The plugin seam over a real vault: multi-entry points (nested paths, per-entry metadata,
a sparse host file kept sparse, plugin notes), streaming reads blob by blob, incremental
entries, and resource secrets sealed under the root key (never in a row, a listing or a
description; unsealed for the worker; kept readable by a root-key rotation)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import pytest
import sqlalchemy as sa

from snowvault.control import catalog
from snowvault.control.model import host_paths
from snowvault.control.scheduler import runner
from snowvault.control.services import (
    backup_jobs,
    plugin_io,
    resources,
    restore_jobs,
    root_key,
    vaults,
)
from snowvault.control.services.base import Caller, Deps
from snowvault.core.errors import InvalidInput
from snowvault.engine import crypto
from snowvault.plugins.base import (
    BackupRequest,
    Entry,
    MetadataKey,
    Progress,
    Registration,
    Resource,
    RestoreRequest,
)
from snowvault.plugins.directory import Directory
from snowvault.plugins.registry import Registry
from snowvault.testing.plugins import InMemoryPlugin, MemorySink, MemorySource

ROLE = "arn:aws:iam::111122223333:role/r"
ROOT = b"k" * 32  # the services conftest's root key
BIG = random.Random(7).randbytes(5 * 1024 * 1024 + 123)  # several chunks of ~1 MiB
SECRET = "hunter2-do-not-show"
HOLE = 4 * 1024 * 1024


def _sparse_file(path: Path) -> Path:
    """4 MiB hole, 8 KiB of data, 4 MiB hole (a file system without holes stores zeros)."""
    with open(path, "wb") as f:
        f.seek(HOLE)
        f.write(b"D" * 8192)
        f.truncate(2 * HOLE + 8192)
    return path


@contextmanager
def _bytes(data: bytes) -> Iterator[BinaryIO]:
    yield io.BytesIO(data)


class Bundle:
    """A test type backing up several entries; its restore reads them every way a
    plugin can (entries, info, open) and writes the tree with to_directory."""

    type_name = "Bundle"
    arn_kind = "bundle"
    restore_keys = (MetadataKey("targetPath", True, "where the tree goes"),)

    def __init__(self, sparse: Path, opened: list[str]) -> None:
        self.sparse, self.opened = sparse, opened
        self.seen: dict[str, Any] = {}

    def check_source(self, source: str, policy: host_paths.Policy, properties: Any) -> Registration:
        return Registration(source)

    def describe(self, resource: Resource) -> dict[str, Any]:
        return {}

    def _open(self, path: str, data: bytes) -> Any:
        def opener() -> Any:
            self.opened.append(path)
            return _bytes(data)

        return opener

    def backup(self, request: BackupRequest) -> None:
        request.sink.note({"server": "9.1", "databases": ["a", "b"]})
        request.sink.entries(
            [
                Entry("a.txt", self._open("a.txt", b"hello"), meta={"content-type": "text/x"}),
                Entry("dir/sub/b.bin", self._open("dir/sub/b.bin", b"b" * 100), mode=0o640),
                Entry("big/blob.bin", self._open("big/blob.bin", BIG), fingerprint="etag-1"),
                Entry("disk.img", host_path=str(self.sparse)),
            ],
            request.progress,
        )

    def check_restore(self, metadata: Any, policy: host_paths.Policy) -> None:
        return None

    def restore(self, request: RestoreRequest) -> None:
        source = request.source
        self.seen["entries"] = source.entries()
        self.seen["info"] = dict(source.info())
        reads: list[int] = getattr(source, "blob_reads")  # noqa: B009 (EngineSource's)
        with source.open("big/blob.bin") as body:
            first = body.read(1000)
            self.seen["blobs_after_first_read"] = len(reads)
            digest = hashlib.sha256(first)
            while piece := body.read(64 * 1024):
                digest.update(piece)
        self.seen["big_sha"] = digest.hexdigest()
        self.seen["blob_reads"] = list(reads)
        with source.open("disk.img") as disk:
            self.seen["disk"] = disk.read()
        source.to_directory(
            request.metadata["targetPath"], include=[], overwrite=False, progress=request.progress
        )

    def restore_defaults(self, resource: Resource | None) -> dict[str, str]:
        return {}

    def validate_restore(self, request: RestoreRequest) -> str | None:
        return None


def _run(deps: Deps) -> None:
    runner.Worker(deps, runner.WorkerOptions(lease_seconds=30, worker_id="w1")).run_once()


def _backup(deps: Deps, caller: Caller, arn: str) -> Any:
    job = backup_jobs.start(deps, caller, backup_jobs.StartRequest("v", arn, ROLE))
    _run(deps)
    done = backup_jobs.get(deps, caller, job.job_id)
    assert done.state == "COMPLETED", done.status_message
    return done


@pytest.fixture
def bundle(deps: Deps, tmp_path: Path) -> tuple[Deps, Bundle]:
    plugin = Bundle(_sparse_file(tmp_path / "sparse.img"), [])
    return dataclasses.replace(deps, plugins=Registry([Directory(), plugin])), plugin


def test_entries_round_trip_with_nesting_meta_holes_notes_and_streaming(
    bundle: tuple[Deps, Bundle], caller: Caller, tmp_path: Path
) -> None:
    deps, plugin = bundle
    vaults.create(deps, caller, "v")
    arn = resources.register(deps, caller, resource_type="Bundle", name="b", source="x")["arn"]
    done = _backup(deps, caller, arn)
    assert done.percent_done == 100.0
    target = tmp_path / "out"
    job = restore_jobs.start(
        deps,
        caller,
        recovery_point_arn=done.recovery_point_arn,
        metadata={"targetPath": str(target)},
    )
    _run(deps)
    restored = restore_jobs.get(deps, caller, job.restore_job_id)
    assert restored.status == "COMPLETED", restored.status_message

    listing = {e.path: e for e in plugin.seen["entries"]}
    assert list(listing) == ["a.txt", "big/blob.bin", "dir/sub/b.bin", "disk.img"]
    assert listing["a.txt"].meta == {"content-type": "text/x"}
    assert listing["big/blob.bin"].size == len(BIG)
    assert listing["disk.img"].size == 2 * HOLE + 8192
    assert plugin.seen["info"] == {"server": "9.1", "databases": ["a", "b"]}

    # open streams: the first read fetched one blob, the whole body took several
    assert plugin.seen["big_sha"] == hashlib.sha256(BIG).hexdigest()
    assert plugin.seen["blobs_after_first_read"] == 1
    # one blob per fetch, never the whole body at once: the chunk sizes follow the vault's
    # random chunker seed (one chunk once came to 2.5 MiB, half of BIG), so no fixed bound
    assert len(plugin.seen["blob_reads"]) >= 3
    assert sum(plugin.seen["blob_reads"]) == len(BIG)
    assert plugin.seen["disk"] == (tmp_path / "sparse.img").read_bytes()

    # the tree: nested directories, modes, the sparse file restored with its holes
    assert (target / "a.txt").read_bytes() == b"hello"
    assert (target / "dir" / "sub" / "b.bin").read_bytes() == b"b" * 100
    assert (target / "dir" / "sub" / "b.bin").stat().st_mode & 0o777 == 0o640
    assert (target / "big" / "blob.bin").read_bytes() == BIG
    disk = target / "disk.img"
    assert disk.read_bytes() == (tmp_path / "sparse.img").read_bytes()
    assert disk.stat().st_blocks * 512 < 1024 * 1024  # 8 KiB of data, not 8 MiB


def test_a_second_backup_reuses_fingerprinted_entries_and_dedups_chunks(
    bundle: tuple[Deps, Bundle], caller: Caller
) -> None:
    deps, plugin = bundle
    vaults.create(deps, caller, "v")
    arn = resources.register(deps, caller, resource_type="Bundle", name="b", source="x")["arn"]
    _backup(deps, caller, arn)
    assert "big/blob.bin" in plugin.opened
    plugin.opened.clear()
    second = _backup(deps, caller, arn)
    assert "big/blob.bin" not in plugin.opened  # same path, same fingerprint: not read
    assert sorted(plugin.opened) == ["a.txt", "dir/sub/b.bin"]
    vault = vaults.get(deps, caller, "v")
    rp_id = second.recovery_point_arn.rsplit(":", 1)[-1]
    with catalog.db.read_transaction(deps.engine) as conn:
        rp = catalog.recovery_points.get(conn, second.recovery_point_arn)
    source = plugin_io.EngineSource(deps, vault, rp.engine_recovery_point_id or rp_id)
    with source.open("big/blob.bin") as body:
        assert hashlib.sha256(body.read()).hexdigest() == hashlib.sha256(BIG).hexdigest()


def test_the_sink_refuses_bad_entry_paths_and_a_note_after_the_write(
    deps: Deps, caller: Caller
) -> None:
    vaults.create(deps, caller, "v")
    vault = vaults.get(deps, caller, "v")
    for bad in ("/abs", "a/../b", "a//b", ""):
        sink = plugin_io.EngineSink(deps, vault, parent=None, tags={}, metadata={})
        with pytest.raises(InvalidInput, match="entry path"):
            sink.entries([Entry(bad, lambda: _bytes(b"x"))], lambda p: None)
    sink = plugin_io.EngineSink(deps, vault, parent=None, tags={}, metadata={})
    with pytest.raises(InvalidInput, match="given twice"):
        sink.entries([Entry("a", lambda: _bytes(b"1")), Entry("a", lambda: _bytes(b"2"))], print)
    sink = plugin_io.EngineSink(deps, vault, parent=None, tags={}, metadata={})
    with pytest.raises(InvalidInput, match="JSON"):
        sink.note({"when": object()})
    sink.entries([Entry("a", lambda: _bytes(b"1"))], lambda p: None)
    with pytest.raises(RuntimeError, match="before"):
        sink.note({"late": True})


# ---------------------------------------------------------------- sealed secrets


@pytest.fixture
def sealing(deps: Deps) -> tuple[Deps, InMemoryPlugin]:
    plugin = InMemoryPlugin({"src": b"payload"})
    box = root_key.resource_secret_box(ROOT)
    return dataclasses.replace(deps, plugins=Registry([plugin]), resource_secrets=box), plugin


def _register_secret(deps: Deps, caller: Caller) -> dict[str, Any]:
    return resources.register(
        deps,
        caller,
        resource_type="InMemory",
        name="m",
        source="src",
        properties={"password": SECRET, "endpoint": "http://127.0.0.1:9"},
    )


def test_secrets_are_sealed_in_the_catalog_and_shown_nowhere(
    sealing: tuple[Deps, InMemoryPlugin], caller: Caller
) -> None:
    deps, _plugin = sealing
    row = _register_secret(deps, caller)
    assert row["properties"] == {"endpoint": "http://127.0.0.1:9"}
    assert SECRET not in repr(row) and "sealed_secrets" not in row
    described = resources.describe(deps, caller, row["arn"])
    assert described["discovery"] == {"SizeInBytes": len(b"payload")}
    assert SECRET not in repr(described)
    assert SECRET not in repr(resources.list_resources(deps, caller).items)
    with deps.engine.connect() as conn:
        raw = conn.execute(sa.text("SELECT * FROM resources")).mappings().one()
    assert SECRET.encode() not in bytes(raw["sealed_secrets"])
    assert SECRET not in repr(dict(raw))
    assert resources.worker_secrets(deps, row["arn"]) == {"password": SECRET}


def test_the_worker_gets_the_secrets_and_only_the_worker(
    sealing: tuple[Deps, InMemoryPlugin], caller: Caller
) -> None:
    deps, plugin = sealing
    arn = _register_secret(deps, caller)["arn"]
    vaults.create(deps, caller, "v")
    _backup(deps, caller, arn)
    [seen] = plugin.seen
    assert seen.secrets == {"password": SECRET}
    assert seen.properties == {"endpoint": "http://127.0.0.1:9"}
    job = backup_jobs.list_jobs(deps, caller, catalog.jobs.BackupJobFilters()).items[0]
    assert SECRET not in repr(job)


def test_rotation_reseals_resource_secrets(
    sealing: tuple[Deps, InMemoryPlugin], caller: Caller
) -> None:
    deps, _plugin = sealing
    arn = _register_secret(deps, caller)["arn"]
    new = b"n" * 32
    done = root_key.reseal(deps.engine, ROOT, new)
    assert done.resource_secrets == 1
    rotated = dataclasses.replace(deps, resource_secrets=root_key.resource_secret_box(new))
    assert resources.worker_secrets(rotated, arn) == {"password": SECRET}
    with pytest.raises(crypto.AuthenticationFailed):
        resources.worker_secrets(deps, arn)  # the old key opens nothing any more


def test_a_server_without_a_sealing_key_refuses_secrets(deps: Deps, caller: Caller) -> None:
    deps = dataclasses.replace(deps, plugins=Registry([InMemoryPlugin({"src": b"x"})]))
    with pytest.raises(InvalidInput, match="seal"):
        _register_secret(deps, caller)
    assert resources.list_resources(deps, caller).items == []


# ---------------------------------------------------------------- the in-memory fakes


def test_memory_sink_and_source_follow_the_protocol(tmp_path: Path) -> None:
    sparse = _sparse_file(tmp_path / "s.img")
    sink = MemorySink()
    sink.note({"v": 1})
    progress: list[Progress] = []
    sink.entries(
        [
            Entry("x/y.txt", lambda: _bytes(b"yy"), meta={"k": "v"}),
            Entry("s.img", host_path=str(sparse)),
        ],
        progress.append,
    )
    assert sink.kind == "entries" and progress[-1].bytes_done == 2 + sparse.stat().st_size
    assert sink.holes["s.img"] and sink.holes["s.img"][0] == (0, HOLE)
    with pytest.raises(RuntimeError):
        sink.stream("again", io.BytesIO(b""), print)
    source = MemorySource.of(sink)
    assert [(e.path, e.meta) for e in source.entries()] == [("x/y.txt", {"k": "v"}), ("s.img", {})]
    assert source.info() == {"v": 1}
    with source.open("s.img") as body:
        assert body.read(10) == bytes(10)
    assert len(source.reads) == 1
    source.to_directory(str(tmp_path / "t"), include=["x"], overwrite=False, progress=print)
    assert (tmp_path / "t" / "x" / "y.txt").read_bytes() == b"yy"
    assert not (tmp_path / "t" / "s.img").exists()
    assert os.path.exists(sparse)


class _Describing(InMemoryPlugin):
    """describe sees the reach policy and the unsealed secrets (as a password-protected
    database needs), or raises with a secret in its message."""

    def __init__(self, fail: bool) -> None:
        super().__init__({"src": b"x"})
        self.fail = fail
        self.policies: list[host_paths.Policy] = []

    def describe(self, resource: Resource, policy: host_paths.Policy) -> dict[str, Any]:
        if self.fail:
            raise RuntimeError(f"connect failed with password {SECRET}")
        self.policies.append(policy)
        return {"GotPassword": resource.secrets.get("password") == SECRET}


@pytest.mark.parametrize("fail", [False, True])
def test_describe_passes_the_policy_and_the_secrets_and_never_a_plugin_message(
    deps: Deps, caller: Caller, fail: bool
) -> None:
    plugin = _Describing(fail)
    box = root_key.resource_secret_box(ROOT)
    deps = dataclasses.replace(deps, plugins=Registry([plugin]), resource_secrets=box)
    arn = _register_secret(deps, caller)["arn"]
    discovery = resources.describe(deps, caller, arn)["discovery"]
    if fail:
        assert discovery == {"Error": "discovery failed (RuntimeError)"}
    else:
        assert discovery == {"GotPassword": True}
        assert plugin.policies == [deps.path_policy]


def test_unfingerprinted_entries_are_read_again_but_dedup_by_chunk(
    deps: Deps, caller: Caller
) -> None:
    vaults.create(deps, caller, "v")
    vault = vaults.get(deps, caller, "v")
    added = []
    parent = None
    for _ in range(2):
        sink = plugin_io.EngineSink(deps, vault, parent=parent, tags={}, metadata={})
        done: list[Progress] = []
        sink.entries([Entry("x/big.bin", lambda: _bytes(BIG), size=len(BIG))], done.append)
        summary = sink.result.manifest.summary
        added.append(summary.bytes_added)
        assert summary.bytes_read == len(BIG) and done[-1].bytes_done == len(BIG)
        assert done[-1].bytes_total == len(BIG)
        parent = sink.result.rp_id
    assert added[0] > len(BIG) // 2
    assert added[1] < 64 * 1024  # the trees and nothing else: every chunk was stored
