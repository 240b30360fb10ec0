"""Restore: include paths, overwrite rules, damaged blobs, non-root restores."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from snowvault.core import errors as core_errors
from snowvault.engine import archiver, errors, restorer
from snowvault.engine.tree import decode_tree
from snowvault.testing import FakeRepository

NOW = datetime(2026, 3, 4, tzinfo=UTC)


@pytest.fixture
def backed_up(tmp_path: Path) -> tuple[FakeRepository, str]:
    src = tmp_path / "src"
    (src / "etc" / "ssl").mkdir(parents=True)
    (src / "var").mkdir()
    (src / "etc" / "hosts").write_bytes(b"hosts")
    (src / "etc" / "ssl" / "cert.pem").write_bytes(b"cert")
    (src / "var" / "log.txt").write_bytes(b"log" * 5000)
    os.chmod(src / "etc", 0o711)
    os.mknod(src / "var" / "tty", stat.S_IFCHR | 0o600, os.makedev(5, 0))
    repo = FakeRepository()
    return repo, archiver.backup_paths(repo, [src], now=NOW).rp_id


def test_include_restores_only_chosen_paths_with_their_parents(
    tmp_path: Path, backed_up: tuple[FakeRepository, str]
) -> None:
    repo, rp = backed_up
    out = tmp_path / "out"
    result = restorer.restore(repo, rp, out, include=["/etc/ssl", "var/log.txt"])
    assert (out / "etc" / "ssl" / "cert.pem").read_bytes() == b"cert"
    assert (out / "var" / "log.txt").read_bytes() == b"log" * 5000
    assert not (out / "etc" / "hosts").exists() and not (out / "var" / "tty").exists()
    assert stat.S_IMODE(os.stat(out / "etc").st_mode) == 0o711
    assert (result.files, result.bytes) == (2, 4 + 15000)


def test_include_of_a_missing_path_is_not_found(
    tmp_path: Path, backed_up: tuple[FakeRepository, str]
) -> None:
    repo, rp = backed_up
    with pytest.raises(core_errors.NotFound, match="etc/nope"):
        restorer.restore(repo, rp, tmp_path / "out", include=["etc/nope"])


def test_existing_file_is_a_conflict_and_nothing_is_written(
    tmp_path: Path, backed_up: tuple[FakeRepository, str]
) -> None:
    repo, rp = backed_up
    out = tmp_path / "out"
    (out / "var").mkdir(parents=True)
    (out / "var" / "log.txt").write_bytes(b"mine")
    with pytest.raises(core_errors.Conflict, match=r"var/log\.txt") as info:
        restorer.restore(repo, rp, out)
    assert info.value.fields["path"].endswith("var/log.txt")
    assert (out / "var" / "log.txt").read_bytes() == b"mine"
    assert not (out / "etc").exists()


def test_overwrite_replaces_existing_files(
    tmp_path: Path, backed_up: tuple[FakeRepository, str]
) -> None:
    repo, rp = backed_up
    out = tmp_path / "out"
    (out / "var").mkdir(parents=True)
    (out / "var" / "log.txt").write_bytes(b"mine")
    (out / "var" / "tty").write_bytes(b"in the way")
    result = restorer.restore(repo, rp, out, overwrite=True)
    assert result.errors == []
    assert (out / "var" / "log.txt").read_bytes() == b"log" * 5000
    assert stat.S_ISCHR(os.lstat(out / "var" / "tty").st_mode)
    assert not any(n.endswith(".snowvault-restore") for n in os.listdir(out / "var"))


def test_damaged_blob_is_reported_with_the_file_name(
    tmp_path: Path, backed_up: tuple[FakeRepository, str]
) -> None:
    repo, rp = backed_up
    root = decode_tree(repo.get_blob(bytes.fromhex(repo.load_manifest(rp)["tree"])))
    var = next(n for n in root if n.name == b"var")
    assert var.subtree is not None
    log = next(
        n for n in decode_tree(repo.get_blob(bytes.fromhex(var.subtree))) if n.name == b"log.txt"
    )
    repo.damaged.add(bytes.fromhex(log.content[0][0] or ""))
    out = tmp_path / "out"
    result = restorer.restore(repo, rp, out)
    [err] = result.errors
    assert err.path == "var/log.txt" and "damaged" in err.error
    assert not (out / "var" / "log.txt").exists()
    assert (out / "etc" / "hosts").read_bytes() == b"hosts"


def test_damaged_tree_names_the_directory(
    tmp_path: Path, backed_up: tuple[FakeRepository, str]
) -> None:
    repo, rp = backed_up
    root = decode_tree(repo.get_blob(bytes.fromhex(repo.load_manifest(rp)["tree"])))
    etc = next(n for n in root if n.name == b"etc")
    repo.damaged.add(bytes.fromhex(etc.subtree or ""))
    # planned (an include, or a target that is not empty): refused before writing
    with pytest.raises(errors.IntegrityError, match="directory /etc"):
        restorer.restore(repo, rp, tmp_path / "some", include=["etc", "var"])
    assert not (tmp_path / "some").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "unrelated").write_bytes(b"")
    with pytest.raises(errors.IntegrityError, match="directory /etc"):
        restorer.restore(repo, rp, tmp_path / "full")
    assert sorted(os.listdir(tmp_path / "full")) == ["unrelated"]
    # streamed (everything into a new directory): an error naming it, the rest restored
    result = restorer.restore(repo, rp, tmp_path / "out")
    [err] = result.errors
    assert err.path == "etc" and "directory /etc" in err.error
    assert (tmp_path / "out" / "var" / "log.txt").exists()


def test_without_root_devices_are_skipped_and_owners_kept(
    tmp_path: Path, backed_up: tuple[FakeRepository, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, rp = backed_up
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    result = restorer.restore(repo, rp, tmp_path / "out")
    assert result.skipped == ["var/tty (chardev: needs root)"]
    assert not (tmp_path / "out" / "var" / "tty").exists()
    assert result.errors == []


def test_full_restore_gives_the_target_the_backed_up_directorys_metadata(
    tmp_path: Path,
) -> None:
    src = tmp_path / "root-src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    os.chmod(src, 0o750)
    if os.geteuid() == 0:
        os.chown(src, 1234, 2345)
    os.utime(src, ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    repo = FakeRepository()
    rp = archiver.backup_paths(repo, [src], now=NOW).rp_id
    out = tmp_path / "root-out"
    restorer.restore(repo, rp, out)
    want, got = os.stat(src), os.stat(out)
    assert stat.S_IMODE(got.st_mode) == 0o750
    assert got.st_mtime_ns == want.st_mtime_ns == 1_600_000_000_123_456_789
    assert (got.st_uid, got.st_gid) == (want.st_uid, want.st_gid)
    partial = tmp_path / "partial-out"
    restorer.restore(repo, rp, partial, include=["a.txt"])
    assert os.stat(partial).st_mtime_ns != want.st_mtime_ns  # only a full restore


def test_manifest_without_root_entry_still_restores(tmp_path: Path) -> None:
    src = tmp_path / "two"
    src.mkdir()
    (src / "x").write_bytes(b"x")
    (tmp_path / "y").write_bytes(b"y")
    repo = FakeRepository()
    rp = archiver.backup_paths(repo, [src, tmp_path / "y"], now=NOW).rp_id
    assert "root" not in repo.load_manifest(rp)
    restorer.restore(repo, rp, tmp_path / "out2")
    assert (tmp_path / "out2" / "two" / "x").read_bytes() == b"x"
