"""BlockDevice resources through the services, a real worker and a vault repository:
a sparse image's holes are neither read nor stored, a restore gives identical bytes with
the holes kept (st_blocks close to the original's), a 1% change costs about 1% plus
chunk overhead in the next point, and a target that exists is refused unless
overwrite. (Devices in use, live devices: tests/unit/plugins/test_plugin_block.py, with
a fake /proc and /sys; a test cannot mount a device.)"""

from __future__ import annotations

import dataclasses
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import plugin_stories as story
from snowvault.control.services import backup_jobs, resources, restore_jobs
from snowvault.control.services.base import Caller, Deps
from snowvault.core.errors import InvalidInput
from snowvault.plugins import block
from snowvault.plugins.block import BlockDevice
from snowvault.plugins.registry import Registry
from snowvault.testing import FakeClock

MiB = 1024 * 1024
SIZE = 64 * MiB
DATA = [(0, 8 * MiB), (20 * MiB, 16 * MiB), (50 * MiB, 8 * MiB)]  # 32 MiB of data, 32 of holes


@pytest.fixture
def deps(tmp_path: Path, clock: FakeClock) -> Iterator[Deps]:
    deps = story.make_deps(tmp_path, clock, [BlockDevice()])
    yield deps
    deps.engine.dispose()


@pytest.fixture
def caller(deps: Deps) -> Caller:
    return story.make_caller(deps)  # with vault "v"


def _image(path: Path) -> Path:
    rng = random.Random(12)  # incompressible, and the same every run
    with open(path, "wb") as f:
        f.truncate(SIZE)
        for offset, length in DATA:
            f.seek(offset)
            f.write(rng.randbytes(length))
    return path


def _backup(deps: Deps, caller: Caller, arn: str) -> backup_jobs.BackupJob:
    done = story.backup(deps, caller, arn)
    assert done.state == "COMPLETED", done.status_message
    return done


def test_a_sparse_image_round_trips_and_a_small_change_costs_little(
    deps: Deps, caller: Caller, tmp_path: Path
) -> None:
    image = _image(tmp_path / "disk.img")
    data = sum(n for _, n in DATA)
    arn = resources.register(
        deps, caller, resource_type="BlockDevice", name="disk", source=str(image)
    )["arn"]
    before = story.stored(tmp_path)
    first = _backup(deps, caller, arn)
    full = story.stored(tmp_path) - before
    assert first.backup_size_in_bytes == SIZE
    assert data <= full < data + 2 * MiB  # the 32 MiB of holes cost nothing

    target = tmp_path / "restored.img"
    done = story.restore(deps, caller, first.recovery_point_arn, {"targetPath": str(target)})
    assert done.status == "COMPLETED", done.status_message
    assert target.read_bytes() == image.read_bytes()
    assert abs(os.stat(target).st_blocks - os.stat(image).st_blocks) * 512 < MiB  # holes kept

    with open(image, "r+b") as f:  # 1% of the image, in one place
        f.seek(22 * MiB)
        f.write(random.Random(13).randbytes(SIZE // 100))
    before = story.stored(tmp_path)
    second = _backup(deps, caller, arn)
    added = story.stored(tmp_path) - before
    assert SIZE // 100 <= added < SIZE // 100 + 4 * MiB, added  # 1% + a few ~1 MiB chunks
    assert added < full / 4

    with pytest.raises(InvalidInput, match="exists"):
        restore_jobs.start(
            deps,
            caller,
            recovery_point_arn=second.recovery_point_arn,
            metadata={"targetPath": str(target)},
        )
    over = {"targetPath": str(target), "overwrite": "true"}
    done = story.restore(deps, caller, second.recovery_point_arn, over)
    assert done.status == "COMPLETED", done.status_message
    assert target.read_bytes() == image.read_bytes()


def test_a_live_device_completes_and_the_job_says_so(
    deps: Deps, caller: Caller, tmp_path: Path
) -> None:
    """The image stands in for device 7:250 (a fake device lookup and sysfs: neither a
    snapshot nor read-only), so it is read live."""
    image = tmp_path / "dev.img"
    image.write_bytes(b"live" * 1000)
    (tmp_path / "sys").mkdir()

    def device_of(path: str) -> tuple[int, int] | None:
        return (7, 250) if path == str(image) else None

    host = block.Host(
        str(tmp_path / "none"), str(tmp_path / "none"), str(tmp_path / "sys"), device_of
    )
    deps = dataclasses.replace(deps, plugins=Registry([BlockDevice(host)]))
    arn = resources.register(
        deps, caller, resource_type="BlockDevice", name="dev", source=str(image)
    )["arn"]
    done = _backup(deps, caller, arn)
    assert done.status_message == (
        f"read a live device: {image} was not a snapshot or read-only, so blocks written "
        "during the backup may be inconsistent"
    )
