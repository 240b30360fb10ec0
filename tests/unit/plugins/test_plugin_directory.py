"""The Directory plugin on a real file system in tmp_path: the host-path rule at
registration, at restore and again right before reading or writing; the Metadata keys.
The Sink and Source here only record what the plugin asked for (the real ones, over an
engine repository, are exercised by tests/unit/services/test_plugin_contract.py)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from snowvault.control.model import host_paths
from snowvault.core.errors import InvalidInput
from snowvault.plugins import directory
from snowvault.plugins.base import (
    BackupRequest,
    Progress,
    ProgressCallback,
    Registration,
    Resource,
    RestoreRequest,
)
from snowvault.plugins.errors import InvalidRestoreTarget

PLUGIN = directory.Directory()


@pytest.fixture
def policy(tmp_path: Path) -> host_paths.Policy:
    """tmp_path/allowed may be named, tmp_path/allowed/storage never."""
    (tmp_path / "allowed" / "storage").mkdir(parents=True)
    return host_paths.Policy.build(
        [str(tmp_path / "allowed")], [], [str(tmp_path / "allowed" / "storage")], os.path.realpath
    )


class _Recorder:
    """A Sink and a Source that record calls instead of touching a repository."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def directory(self, path: str, progress: ProgressCallback) -> None:
        progress(Progress(3, None))
        self.calls.append(("directory", path))

    def stream(self, name: str, stream: BinaryIO, progress: ProgressCallback) -> None:
        self.calls.append(("stream", name))

    def to_directory(
        self, target: str, *, include: Sequence[str], overwrite: bool, progress: ProgressCallback
    ) -> None:
        self.calls.append(("to_directory", (target, list(include), overwrite)))

    def read_file(self, name: str) -> bytes:
        raise AssertionError("Directory never reads single files")


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "allowed" / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "a.txt").write_bytes(b"x" * 10)
    (src / "b.txt").write_bytes(b"y" * 5)
    return src


def test_check_source_stores_the_resolved_directory(
    tmp_path: Path, policy: host_paths.Policy
) -> None:
    src = _source(tmp_path)
    alias = tmp_path / "allowed" / "alias"
    alias.symlink_to(src, target_is_directory=True)
    assert PLUGIN.check_source(str(alias) + "/../src/", policy, {}) == Registration(str(src))
    assert PLUGIN.check_source(str(alias), policy, {}).source == str(src)
    with pytest.raises(InvalidInput, match="takes no Properties"):
        PLUGIN.check_source(str(src), policy, {"sslmode": "require"})
    assert PLUGIN.describe(_resource(src), policy) == {}


def test_check_source_refuses_what_the_rule_refuses_before_looking_at_existence(
    tmp_path: Path, policy: host_paths.Policy
) -> None:
    with pytest.raises(host_paths.PathRefused, match="not under an allowed path"):
        PLUGIN.check_source(str(tmp_path / "nowhere"), policy, {})  # does not exist: still refused
    with pytest.raises(host_paths.PathRefused, match="inside the snowvault data directory"):
        PLUGIN.check_source(str(tmp_path / "allowed" / "storage"), policy, {})
    with pytest.raises(host_paths.InvalidHostPath, match="absolute"):
        PLUGIN.check_source("relative/dir", policy, {})
    (tmp_path / "allowed" / "file").write_text("f")
    with pytest.raises(InvalidInput, match="not an existing directory"):
        PLUGIN.check_source(str(tmp_path / "allowed" / "file"), policy, {})
    with pytest.raises(InvalidInput, match="not an existing directory"):
        PLUGIN.check_source(str(tmp_path / "allowed" / "missing"), policy, {})


def _resource(source: Path | str) -> Resource:
    return Resource(
        "arn:aws:snowvault:us-east-1:111122223333:directory/s", "Directory", "s", str(source)
    )


def test_backup_reads_the_resolved_source_with_its_size_as_the_total(
    tmp_path: Path, policy: host_paths.Policy
) -> None:
    src = _source(tmp_path)
    sink, seen = _Recorder(), list[Progress]()
    PLUGIN.backup(BackupRequest(_resource(src), policy, sink, seen.append))
    assert sink.calls == [("directory", str(src))]
    assert seen == [Progress(0, 15), Progress(3, 15)]  # the plugin knows the total


def test_backup_checks_the_source_again_and_never_touches_the_sink_when_refused(
    tmp_path: Path, policy: host_paths.Policy
) -> None:
    src = _source(tmp_path)
    resource = _resource(src)
    os.rename(src, tmp_path / "moved")
    src.symlink_to(tmp_path / "allowed" / "storage", target_is_directory=True)
    sink = _Recorder()
    with pytest.raises(host_paths.PathRefused, match="resolves to"):
        PLUGIN.backup(BackupRequest(resource, policy, sink, lambda p: None))
    os.unlink(src)
    (tmp_path / "allowed" / "src").write_text("now a file")
    with pytest.raises(InvalidInput, match="is not a directory"):
        PLUGIN.backup(BackupRequest(resource, policy, sink, lambda p: None))
    assert sink.calls == []


def test_restore_metadata_rules(tmp_path: Path, policy: host_paths.Policy) -> None:
    target = tmp_path / "allowed" / "target"
    target.mkdir()
    assert directory.parse_items('["/a"]') == ["/a"]
    assert directory.parse_items(" /a , /b ") == ["/a", "/b"]
    with pytest.raises(InvalidRestoreTarget):
        directory.parse_items("[1]")
    with pytest.raises(InvalidRestoreTarget, match="not a valid JSON list"):
        directory.parse_items("[nope")
    with pytest.raises(InvalidRestoreTarget, match="absolute"):
        directory.check_target({"targetPath": "rel"}, policy)
    with pytest.raises(InvalidRestoreTarget, match="required"):
        directory.check_target({}, policy)
    (target / "x").write_text("x")
    with pytest.raises(InvalidRestoreTarget, match="not empty"):
        directory.check_target({"targetPath": str(target)}, policy)
    assert directory.check_target({"targetPath": str(target), "overwrite": "true"}, policy) == (
        str(target),
        True,
    )
    with pytest.raises(InvalidRestoreTarget, match="not a directory"):
        directory.check_target({"targetPath": str(target / "x"), "overwrite": "true"}, policy)
    with pytest.raises(host_paths.PathRefused):
        PLUGIN.check_restore({"targetPath": str(tmp_path / "elsewhere")}, policy)
    with pytest.raises(InvalidRestoreTarget):
        PLUGIN.check_restore(
            {"targetPath": str(tmp_path / "allowed" / "new"), "items": "[1]"}, policy
        )


def test_restore_creates_the_resolved_target_and_passes_items_and_overwrite(
    tmp_path: Path, policy: host_paths.Policy
) -> None:
    real = tmp_path / "allowed" / "real"
    real.mkdir()
    (tmp_path / "allowed" / "alias").symlink_to(real, target_is_directory=True)
    metadata = {"targetPath": str(tmp_path / "allowed" / "alias" / "out"), "items": '["/d"]'}
    source = _Recorder()
    request = RestoreRequest(_resource("/gone"), metadata, policy, source, lambda p: None)
    PLUGIN.restore(request)
    assert source.calls == [("to_directory", (str(real / "out"), ["/d"], False))]
    assert (real / "out").is_dir()
    assert PLUGIN.validate_restore(request) is None


def test_restore_defaults_put_the_point_back_where_it_came_from() -> None:
    assert PLUGIN.restore_defaults(_resource("/srv/photos")) == {
        "targetPath": "/srv/photos",
        "overwrite": "false",
        "items": "[]",
    }
    assert PLUGIN.restore_defaults(None)["targetPath"] == ""
    assert [k.name for k in PLUGIN.restore_keys] == ["targetPath", "items", "overwrite"]
