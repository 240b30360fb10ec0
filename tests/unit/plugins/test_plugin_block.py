"""The BlockDevice plugin on sparse image files in tmp_path, through snowvault.testing's
MemorySink/MemorySource: the host-path rule, holes read as holes and restored as holes,
identical bytes back, the after-restore check, a live device noted, and targets in use
(mounted, held, swap, a loop's backing file) refused — with fake /proc and /sys files and
a fake device lookup, since a test cannot make or mount a real device."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from snowvault.control.model import host_paths
from snowvault.core.errors import Conflict, InvalidInput
from snowvault.plugins import block
from snowvault.plugins.base import BackupRequest, Progress, Resource, RestoreRequest
from snowvault.plugins.errors import InvalidRestoreTarget
from snowvault.testing.plugins import MemorySink, MemorySource

MiB = 1024 * 1024
EXTENTS = {0: b"boot" * 1024, 1 * MiB: bytes(range(256)) * 256, 5 * MiB + 3: b"x"}


@pytest.fixture
def policy(tmp_path: Path) -> host_paths.Policy:
    (tmp_path / "ok" / "storage").mkdir(parents=True)
    return host_paths.Policy.build(
        [str(tmp_path / "ok")], [], [str(tmp_path / "ok" / "storage")], os.path.realpath
    )


def sparse_image(path: Path, size: int = 8 * MiB) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
        for offset, data in EXTENTS.items():
            f.seek(offset)
            f.write(data)
    return path


def _resource(source: str) -> Resource:
    return Resource("arn:aws:snowvault:us-east-1:1:block/d", "BlockDevice", "d", source)


def _backup(plugin: block.BlockDevice, source: str, policy: host_paths.Policy) -> MemorySink:
    sink = MemorySink()
    seen: list[Progress] = []
    plugin.backup(BackupRequest(_resource(source), policy, sink, seen.append))
    assert seen[0] == Progress(0, os.path.getsize(source))
    return sink


def _restore(
    plugin: block.BlockDevice, sink: MemorySink, policy: host_paths.Policy, md: dict[str, str]
) -> RestoreRequest:
    request = RestoreRequest(_resource(""), md, policy, MemorySource.of(sink), lambda p: None)
    plugin.check_restore(md, policy)
    plugin.restore(request)
    return request


def test_a_sparse_image_comes_back_identical_with_its_holes(
    tmp_path: Path, policy: host_paths.Policy
) -> None:
    image = sparse_image(tmp_path / "ok" / "disk.img")
    plugin = block.BlockDevice()
    assert plugin.check_source(str(image), policy, {}).source == str(image)
    sink = _backup(plugin, str(image), policy)
    assert sink.kind == "entries" and list(sink.files) == [block.IMAGE]
    assert sink.info == {"kind": "file", "size": 8 * MiB}
    assert sum(n for _, n in sink.holes[block.IMAGE]) > 6 * MiB  # holes seen, not read as data
    target = tmp_path / "ok" / "restored.img"
    request = _restore(plugin, sink, policy, {"targetPath": str(target)})
    assert target.read_bytes() == image.read_bytes()
    assert os.stat(target).st_blocks <= os.stat(image).st_blocks + 16  # holes kept
    assert os.stat(target).st_blocks * 512 < 1 * MiB
    assert plugin.validate_restore(request) is None
    with open(target, "r+b") as f:
        f.seek(1 * MiB + 5)
        f.write(b"!")
    assert "differs from the image" in (plugin.validate_restore(request) or "")
    os.truncate(target, 4 * MiB)
    assert plugin.validate_restore(request) == f"{target} has {4 * MiB} bytes, the image {8 * MiB}"


def test_sources_and_targets_keep_the_host_path_rule(
    tmp_path: Path, policy: host_paths.Policy
) -> None:
    plugin = block.BlockDevice()
    image = sparse_image(tmp_path / "ok" / "disk.img", MiB)
    outside = sparse_image(tmp_path / "outside.img", MiB)
    (tmp_path / "ok" / "link.img").symlink_to(outside)
    (tmp_path / "ok" / "adir").mkdir()
    for source in (str(outside), str(tmp_path / "ok" / "link.img"), "/etc/passwd"):
        with pytest.raises(host_paths.PathRefused):
            plugin.check_source(source, policy, {})
    for source in (str(tmp_path / "ok" / "adir"), str(tmp_path / "ok" / "none"), "rel.img"):
        with pytest.raises(InvalidInput):
            plugin.check_source(source, policy, {})
    with pytest.raises(InvalidInput, match="no properties"):
        plugin.check_source(str(image), policy, {"x": "y"})
    sink = _backup(plugin, str(image), policy)
    bad = [
        ({}, InvalidRestoreTarget),
        ({"targetPath": "ok/x.img"}, InvalidRestoreTarget),
        ({"targetPath": str(image)}, InvalidRestoreTarget),  # exists, no overwrite
        ({"targetPath": str(tmp_path / "ok" / "adir")}, InvalidRestoreTarget),
        ({"targetPath": str(tmp_path / "ok" / "no" / "x.img")}, InvalidRestoreTarget),
        ({"targetPath": str(tmp_path / "ok" / "storage" / "x.img")}, host_paths.PathRefused),
        ({"targetPath": str(tmp_path / "x.img")}, host_paths.PathRefused),
    ]
    for md, error in bad:
        with pytest.raises(error):
            plugin.check_restore(md, policy)
    original = image.read_bytes()
    image.write_bytes(b"changed")
    _restore(plugin, sink, policy, {"targetPath": str(image), "overwrite": "true"})
    assert image.read_bytes() == original


def _fake_host(tmp_path: Path, number: str = "7:250") -> tuple[block.Host, Path]:
    """A /proc and /sys of a host where tmp_path/ok/dev.img is block device 7:250."""
    device = sparse_image(tmp_path / "ok" / "dev.img", MiB)
    sys = tmp_path / "sys"
    (sys / "dev" / "block" / number / "holders").mkdir(parents=True)
    (sys / "block").mkdir()
    (tmp_path / "mountinfo").write_text("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n")
    (tmp_path / "swaps").write_text("Filename Type Size Used Priority\n")
    major, minor = (int(n) for n in number.split(":"))

    def device_of(path: str) -> tuple[int, int] | None:
        return (major, minor) if path == str(device) else None

    host = block.Host(str(tmp_path / "mountinfo"), str(tmp_path / "swaps"), str(sys), device_of)
    return host, device


def test_a_device_in_use_is_never_a_restore_target(
    tmp_path: Path, policy: host_paths.Policy
) -> None:
    host, device = _fake_host(tmp_path)
    plugin = block.BlockDevice(host)
    md = {"targetPath": str(device), "overwrite": "true"}
    with pytest.raises(InvalidRestoreTarget, match=r"is a device; set Metadata\.overwrite"):
        plugin.check_restore({"targetPath": str(device)}, policy)
    plugin.check_restore(md, policy)  # idle: allowed
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(mountinfo.read_text() + "40 22 7:250 / /mnt rw - ext4 /dev/x rw\n")
    with pytest.raises(Conflict, match=r"is in use: it .* is mounted; not written"):
        plugin.check_restore(md, policy)
    mountinfo.write_text("")
    part = tmp_path / "sys" / "dev" / "block" / "7:250" / "x1"
    part.mkdir()
    (part / "partition").write_text("1\n")
    (part / "dev").write_text("7:251\n")
    (tmp_path / "mountinfo").write_text("41 22 7:251 / /srv rw - xfs /dev/x1 rw\n")
    with pytest.raises(Conflict, match="partition 7:251"):
        plugin.check_restore(md, policy)
    mountinfo.write_text("")
    (tmp_path / "sys" / "dev" / "block" / "7:250" / "holders" / "dm-3").mkdir()
    with pytest.raises(Conflict, match="held by dm-3"):
        plugin.check_restore(md, policy)
    os.rmdir(tmp_path / "sys" / "dev" / "block" / "7:250" / "holders" / "dm-3")
    (tmp_path / "swaps").write_text(f"Filename Type\n{device} partition 1 0 -2\n")
    with pytest.raises(Conflict, match="used as swap"):
        plugin.check_restore(md, policy)
    # the restore itself checks again, right before it writes
    sink = _backup(block.BlockDevice(), str(sparse_image(tmp_path / "ok" / "s.img", MiB)), policy)
    before = device.read_bytes()
    with pytest.raises(Conflict):
        block.BlockDevice(host).restore(
            RestoreRequest(_resource(""), md, policy, MemorySource.of(sink), lambda p: None)
        )
    assert device.read_bytes() == before


def test_an_image_file_backing_a_loop_device_is_not_overwritten(
    tmp_path: Path, policy: host_paths.Policy
) -> None:
    host, _ = _fake_host(tmp_path)
    image = sparse_image(tmp_path / "ok" / "vm.img", MiB)
    (tmp_path / "sys" / "block" / "loop4" / "loop").mkdir(parents=True)
    (tmp_path / "sys" / "block" / "loop4" / "loop" / "backing_file").write_text(f"{image}\n")
    with pytest.raises(Conflict, match="backing file of /dev/loop4"):
        block.BlockDevice(host).check_restore(
            {"targetPath": str(image), "overwrite": "true"}, policy
        )


def test_a_live_device_is_noted_and_a_snapshot_is_not(
    tmp_path: Path, policy: host_paths.Policy
) -> None:
    host, device = _fake_host(tmp_path)
    sink = _backup(block.BlockDevice(host), str(device), policy)
    assert sink.info["kind"] == "device" and sink.info["view"] == block.LIVE
    assert sink.info["warning"].startswith("read a live device: ")
    (tmp_path / "sys" / "dev" / "block" / "7:250" / "slaves" / "dm-1").mkdir(parents=True)
    (tmp_path / "sys" / "block" / "dm-1" / "dm").mkdir(parents=True)
    (tmp_path / "sys" / "block" / "dm-1" / "dm" / "uuid").write_text("LVM-abcdef-cow\n")
    sink = _backup(block.BlockDevice(host), str(device), policy)
    assert sink.info["view"] == "snapshot or read-only device" and "warning" not in sink.info
