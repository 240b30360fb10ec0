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
from typing import Any

import pytest

from snowvault.control import catalog
from snowvault.control.model import host_paths
from snowvault.control.scheduler import runner
from snowvault.control.services import accounts, backup_jobs, resources, restore_jobs, vaults
from snowvault.control.services.base import Caller, Deps, Storage
from snowvault.core.errors import InvalidInput
from snowvault.engine import crypto
from snowvault.plugins import block
from snowvault.plugins.block import BlockDevice
from snowvault.plugins.registry import Registry
from snowvault.testing import FakeClock, ServerVaultKeys

ROOT = b"k" * 32
REGION = "us-east-1"
ROLE = "arn:aws:iam::111122223333:role/r"
MiB = 1024 * 1024
SIZE = 64 * MiB
DATA = [(0, 8 * MiB), (20 * MiB, 16 * MiB), (50 * MiB, 8 * MiB)]  # 32 MiB of data, 32 of holes


@pytest.fixture
def deps(tmp_path: Path, clock: FakeClock) -> Iterator[Deps]:
    engine = catalog.db.create_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    catalog.db.upgrade(engine)
    storage = Storage({REGION: str(tmp_path / "storage" / REGION)})
    paths = host_paths.Policy.build(
        [str(tmp_path)], [], [str(tmp_path / "storage")], os.path.realpath
    )
    yield Deps(
        engine,
        clock,
        storage,
        ServerVaultKeys(ROOT),
        path_policy=paths,
        plugins=Registry([BlockDevice()]),
    )
    engine.dispose()


@pytest.fixture
def caller(deps: Deps) -> Caller:
    box = crypto.SecretBox(ROOT, "access-keys")
    root = accounts.bootstrap(deps.engine, box, now=deps.clock.now(), account_id="111122223333")
    return Caller(root.account_id, REGION, root.principal_arn, deps.clock.now())


def _image(path: Path) -> Path:
    rng = random.Random(12)  # incompressible, and the same every run
    with open(path, "wb") as f:
        f.truncate(SIZE)
        for offset, length in DATA:
            f.seek(offset)
            f.write(rng.randbytes(length))
    return path


def _stored(tmp_path: Path) -> int:
    root = tmp_path / "storage"
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _run(deps: Deps) -> str | None:
    return runner.Worker(deps, runner.WorkerOptions(lease_seconds=30, worker_id="w1")).run_once()


def _backup(deps: Deps, caller: Caller, arn: str) -> backup_jobs.BackupJob:
    job = backup_jobs.start(deps, caller, backup_jobs.StartRequest("v", arn, ROLE))
    _run(deps)
    done = backup_jobs.get(deps, caller, job.job_id)
    assert done.state == "COMPLETED", done.status_message
    return done


def _restore(deps: Deps, caller: Caller, rp_arn: str, metadata: dict[str, str]) -> Any:
    job = restore_jobs.start(deps, caller, recovery_point_arn=rp_arn, metadata=metadata)
    _run(deps)
    return restore_jobs.get(deps, caller, job.restore_job_id)


def test_a_sparse_image_round_trips_and_a_small_change_costs_little(
    deps: Deps, caller: Caller, tmp_path: Path
) -> None:
    image = _image(tmp_path / "disk.img")
    data = sum(n for _, n in DATA)
    vaults.create(deps, caller, "v")
    arn = resources.register(
        deps, caller, resource_type="BlockDevice", name="disk", source=str(image)
    )["arn"]
    before = _stored(tmp_path)
    first = _backup(deps, caller, arn)
    full = _stored(tmp_path) - before
    assert first.backup_size_in_bytes == SIZE
    assert data <= full < data + 2 * MiB  # the 32 MiB of holes cost nothing

    target = tmp_path / "restored.img"
    done = _restore(deps, caller, first.recovery_point_arn, {"targetPath": str(target)})
    assert done.status == "COMPLETED", done.status_message
    assert target.read_bytes() == image.read_bytes()
    assert abs(os.stat(target).st_blocks - os.stat(image).st_blocks) * 512 < MiB  # holes kept

    with open(image, "r+b") as f:  # 1% of the image, in one place
        f.seek(22 * MiB)
        f.write(random.Random(13).randbytes(SIZE // 100))
    before = _stored(tmp_path)
    second = _backup(deps, caller, arn)
    added = _stored(tmp_path) - before
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
    done = _restore(deps, caller, second.recovery_point_arn, over)
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
    vaults.create(deps, caller, "v")
    arn = resources.register(
        deps, caller, resource_type="BlockDevice", name="dev", source=str(image)
    )["arn"]
    done = _backup(deps, caller, arn)
    assert done.status_message == (
        f"read a live device: {image} was not a snapshot or read-only, so blocks written "
        "during the backup may be inconsistent"
    )
