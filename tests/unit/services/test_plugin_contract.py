"""The contract every resource plugin passes, run over each registered type through the
real services, a real worker and a real vault repository: Directory (tmp_path on the
host), BlockDevice (an image file in tmp_path), S3 (a moto server on loopback),
SQLite (a database file in tmp_path), MySQL (a database of its own on the MariaDB at
127.0.0.1:3306), Redis (throwaway redis-servers) and snowvault.testing's
InMemoryPlugin. Adding a type = one module, one registry line, one ``Kit`` here.

Also: what reads the registry (GetSupportedResourceTypes, region settings, selections,
GetRecoveryPointRestoreMetadata) sees a type once it is registered, and a plugin's
after-restore check fails the job."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from helpers.redis_server import RedisServer
from snowvault.control.scheduler import runner
from snowvault.control.services import (
    backup_jobs,
    recovery_points,
    resources,
    restore_jobs,
    selections,
    settings,
    vaults,
)
from snowvault.control.services.base import Caller, Deps
from snowvault.core.errors import InvalidInput, PermissionDenied
from snowvault.engine import crypto
from snowvault.plugins.base import ResourcePlugin
from snowvault.plugins.block import BlockDevice
from snowvault.plugins.directory import Directory
from snowvault.plugins.mysql import MySQL
from snowvault.plugins.redis import Redis
from snowvault.plugins.registry import Registry
from snowvault.plugins.s3 import S3
from snowvault.plugins.sqlite import SQLite
from snowvault.testing.plugins import InMemoryPlugin

ROLE = "arn:aws:iam::111122223333:role/r"
CONTENT = bytes(range(256)) * 300  # a few chunks


@dataclass
class Kit:
    """How the contract drives one plugin: make a source holding ``CONTENT``, name a
    fresh restore target, read back what a restore wrote, remove the original."""

    plugin: ResourcePlugin
    make_source: Callable[[Path], str]
    fresh_target: Callable[[Path], dict[str, str]]
    read_back: Callable[[dict[str, str]], bytes]
    remove: Callable[[str], None]
    bad_metadata: dict[str, str]
    properties: dict[str, str] = dataclasses.field(default_factory=dict)
    exact_size: bool = True
    """False: the point is not the bytes of CONTENT (a dump, a database file, a
    compressed RDB): its size is only checked to be counted (non-zero)."""


def _directory_kit() -> Kit:
    def make_source(tmp: Path) -> str:
        (tmp / "src").mkdir()
        (tmp / "src" / "data.bin").write_bytes(CONTENT)
        return str(tmp / "src")

    return Kit(
        Directory(),
        make_source,
        lambda tmp: {"targetPath": str(tmp / "restored")},
        lambda md: (Path(md["targetPath"]) / "data.bin").read_bytes(),
        lambda source: shutil.rmtree(source),
        {"targetPath": "not/absolute"},
    )


def _in_memory_kit() -> Kit:
    plugin = InMemoryPlugin()

    def make_source(tmp: Path) -> str:
        plugin.objects["src"] = CONTENT
        return "src"

    return Kit(
        plugin,
        make_source,
        lambda tmp: {"targetName": "restored"},
        lambda md: plugin.objects[md["targetName"]],
        lambda source: plugin.objects.pop(source) and None,
        {"overwrite": "true"},  # no targetName
    )


def _s3_kit(request: pytest.FixtureRequest) -> Kit:
    endpoint = request.getfixturevalue("s3_server")
    admin = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    stem = "contract-" + re.sub(r"[^a-z0-9]", "-", request.node.name.lower())[-40:].strip("-")

    def make_source(tmp: Path) -> str:
        admin.create_bucket(Bucket=stem)
        admin.put_object(Bucket=stem, Key="in/data.bin", Body=CONTENT)
        return f"s3://{stem}/in"

    def fresh_target(tmp: Path) -> dict[str, str]:
        admin.create_bucket(Bucket=f"{stem}-to")
        return {"targetBucket": f"{stem}-to"}

    def read_back(md: dict[str, str]) -> bytes:
        key = md.get("targetPrefix", "") + "data.bin"
        return bytes(admin.get_object(Bucket=md["targetBucket"], Key=key)["Body"].read())

    return Kit(
        S3(),
        make_source,
        fresh_target,
        read_back,
        lambda source: admin.delete_object(Bucket=stem, Key="in/data.bin") and None,
        {"targetPrefix": "x/"},  # no targetBucket
        {"endpoint": endpoint, "access_key_id": "testing", "secret_access_key": "testing"},
    )


def _block_kit() -> Kit:
    def make_source(tmp: Path) -> str:
        (tmp / "disk.img").write_bytes(CONTENT)
        return str(tmp / "disk.img")

    return Kit(
        BlockDevice(),
        make_source,
        lambda tmp: {"targetPath": str(tmp / "restored.img")},
        lambda md: Path(md["targetPath"]).read_bytes(),
        lambda source: os.remove(source),
        {"targetPath": "not/absolute"},
    )


def _sqlite_kit() -> Kit:
    def make_source(tmp: Path) -> str:
        with sqlite3.connect(tmp / "app.db") as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE t (b BLOB)")
            conn.execute("INSERT INTO t VALUES (?)", (CONTENT,))
        conn.close()
        return str(tmp / "app.db")

    def read_back(md: dict[str, str]) -> bytes:
        conn = sqlite3.connect(md["targetPath"])
        try:
            return bytes(conn.execute("SELECT b FROM t").fetchone()[0])
        finally:
            conn.close()

    return Kit(
        SQLite(),
        make_source,
        lambda tmp: {"targetPath": str(tmp / "restored.db")},
        read_back,
        lambda source: os.remove(source),
        {"targetPath": "not/absolute"},
        exact_size=False,
    )


_MYSQL = "mysql://root@127.0.0.1:3306"
_mysql_ids = iter(range(1_000_000))


def _mysql(statement: str) -> str:
    argv = ["mariadb", "-h127.0.0.1", "-P3306", "-uroot", "-N", "-B"]
    done = subprocess.run(argv, input=statement.encode(), capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.decode()


def _drop(database: str) -> None:
    _mysql(f"DROP DATABASE {database}")


def _mysql_kit(request: pytest.FixtureRequest) -> Kit:
    name = f"svc_{os.getpid()}_{next(_mysql_ids)}"  # no other worker's test meets it
    request.addfinalizer(
        lambda: _mysql(f"DROP DATABASE IF EXISTS {name}; DROP DATABASE IF EXISTS {name}_r")
    )

    def make_source(tmp: Path) -> str:
        _mysql(f"CREATE DATABASE {name}; CREATE TABLE {name}.t (b LONGBLOB)")
        _mysql(f"INSERT INTO {name}.t VALUES (x'{CONTENT.hex()}')")
        return _MYSQL

    def read_back(md: dict[str, str]) -> bytes:
        return bytes.fromhex(_mysql(f"SELECT HEX(b) FROM {md.get('renameTo', name)}.t").strip())

    return Kit(
        MySQL(),
        make_source,
        lambda tmp: {"targetDsn": _MYSQL, "databases": name, "renameTo": f"{name}_r"},
        read_back,
        lambda source: _drop(name),
        {"databases": name},  # no targetDsn
        {"databases": name},
        exact_size=False,
    )


def _redis_kit(request: pytest.FixtureRequest) -> Kit:
    source = RedisServer(password="pw").__enter__()
    request.addfinalizer(lambda: source.__exit__(None, None, None))

    def make_source(tmp: Path) -> str:
        subprocess.run(
            ["redis-cli", "-p", str(source.port), "-x", "SET", "data"],
            input=CONTENT,
            env={**os.environ, "REDISCLI_AUTH": "pw"},
            check=True,
            capture_output=True,
        )
        return f"redis://:pw@127.0.0.1:{source.port}"

    def fresh_target(tmp: Path) -> dict[str, str]:
        target = RedisServer().__enter__()
        request.addfinalizer(lambda: target.__exit__(None, None, None))
        return {"targetUrl": target.url}

    def read_back(md: dict[str, str]) -> bytes:
        port = md["targetUrl"].rsplit(":", 1)[1]
        argv = ["redis-cli", "-p", port, "--no-auth-warning", "GET", "data"]
        out = subprocess.run(
            argv, env={**os.environ, "REDISCLI_AUTH": "pw"}, capture_output=True, check=True
        ).stdout
        return out[:-1]  # redis-cli's newline

    return Kit(
        Redis(),
        make_source,
        fresh_target,
        read_back,
        lambda url: source.cli("FLUSHALL") and None,
        {"overwrite": "true"},  # neither targetPath nor targetUrl
        exact_size=False,
    )


KITS = {
    "Directory": _directory_kit,
    "InMemory": _in_memory_kit,
    "BlockDevice": _block_kit,
    "SQLite": _sqlite_kit,
}
FIXTURE_KITS = {"S3": _s3_kit, "MySQL": _mysql_kit, "Redis": _redis_kit}
"""Kits that need pytest fixtures (a server): their factory gets the request."""


@pytest.fixture(params=sorted([*KITS, *FIXTURE_KITS]))
def kit(request: pytest.FixtureRequest) -> Kit:
    if request.param in FIXTURE_KITS:
        return FIXTURE_KITS[request.param](request)
    return KITS[request.param]()


@pytest.fixture
def both(deps: Deps, kit: Kit) -> Deps:
    """deps whose registry holds the kit's plugin (and Directory), able to seal secrets."""
    others = [] if isinstance(kit.plugin, Directory) else [Directory()]
    box = deps.resource_secrets or crypto.SecretBox(b"k" * 32, "resource-secrets")
    return dataclasses.replace(deps, plugins=Registry([*others, kit.plugin]), resource_secrets=box)


def _run(deps: Deps) -> str | None:
    return runner.Worker(deps, runner.WorkerOptions(lease_seconds=30, worker_id="w1")).run_once()


def _field(row: Any, name: str) -> Any:
    return getattr(row, name) if hasattr(row, name) else row[name]


def _register(deps: Deps, caller: Caller, kit: Kit, tmp: Path) -> dict[str, Any]:
    return resources.register(
        deps,
        caller,
        resource_type=kit.plugin.type_name,
        name="thing",
        source=kit.make_source(tmp),
        properties=kit.properties,
        tags={"Backup": "yes"},
    )


def _backed_up(deps: Deps, caller: Caller, arn: str) -> Any:
    vaults.create(deps, caller, "v")
    job = backup_jobs.start(deps, caller, backup_jobs.StartRequest("v", arn, ROLE))
    _run(deps)
    done = backup_jobs.get(deps, caller, _field(job, "job_id"))
    assert _field(done, "state") == "COMPLETED", _field(done, "status_message")
    return done


def _restored(deps: Deps, caller: Caller, rp_arn: str, metadata: dict[str, str]) -> Any:
    job = restore_jobs.start(deps, caller, recovery_point_arn=rp_arn, metadata=metadata)
    _run(deps)
    return restore_jobs.get(deps, caller, _field(job, "restore_job_id"))


def test_the_type_has_a_name_and_an_arn_of_its_own(
    both: Deps, caller: Caller, kit: Kit, tmp_path: Path
) -> None:
    row = _register(both, caller, kit, tmp_path)
    kind = kit.plugin.arn_kind
    assert kind and kind == kind.lower() and "/" not in kind and ":" not in kind
    assert row["arn"] == f"arn:aws:snowvault:us-east-1:{caller.account_id}:{kind}/thing"
    assert row["resource_type"] == kit.plugin.type_name
    assert resources.resource_arn("us-east-1", "1", kit.plugin.type_name, "x", both.plugins) == (
        f"arn:aws:snowvault:us-east-1:1:{kind}/x"
    )


def test_a_source_that_cannot_be_protected_is_refused_at_registration(
    both: Deps, caller: Caller, kit: Kit
) -> None:
    for bad in ("", "\x00", "../../etc"):
        with pytest.raises((InvalidInput, PermissionDenied)):
            resources.register(
                both, caller, resource_type=kit.plugin.type_name, name="bad", source=bad
            )
    assert resources.list_resources(both, caller).items == []


def test_backup_then_restore_gives_the_content_back_with_progress(
    both: Deps, caller: Caller, kit: Kit, tmp_path: Path
) -> None:
    done = _backed_up(both, caller, _register(both, caller, kit, tmp_path)["arn"])
    assert _field(done, "percent_done") == 100.0
    if kit.exact_size:
        assert _field(done, "backup_size_in_bytes") == len(CONTENT)
    else:
        assert _field(done, "backup_size_in_bytes") > 0
    metadata = kit.fresh_target(tmp_path)
    restore = _restored(both, caller, _field(done, "recovery_point_arn"), metadata)
    assert _field(restore, "status") == "COMPLETED", _field(restore, "status_message")
    assert _field(restore, "percent_done") == 100.0
    assert kit.read_back(metadata) == CONTENT


def test_restore_defaults_name_only_known_keys_and_put_the_original_back(
    both: Deps, caller: Caller, kit: Kit, tmp_path: Path
) -> None:
    row = _register(both, caller, kit, tmp_path)
    rp_arn = _field(_backed_up(both, caller, row["arn"]), "recovery_point_arn")
    defaults = recovery_points.restore_metadata(both, caller, "v", rp_arn)
    keys = {k.name: k for k in kit.plugin.restore_keys}
    assert set(defaults) <= set(keys)
    assert {name for name, k in keys.items() if k.required} <= set(defaults)
    kit.remove(row["source"])
    restore = _restored(both, caller, rp_arn, defaults)
    assert _field(restore, "status") == "COMPLETED", _field(restore, "status_message")
    assert kit.read_back(kit.plugin.restore_defaults(None) | defaults) == CONTENT


def test_bad_restore_metadata_is_refused_before_any_job_exists(
    both: Deps, caller: Caller, kit: Kit, tmp_path: Path
) -> None:
    rp_arn = _field(
        _backed_up(both, caller, _register(both, caller, kit, tmp_path)["arn"]),
        "recovery_point_arn",
    )
    with pytest.raises(InvalidInput):
        restore_jobs.start(both, caller, recovery_point_arn=rp_arn, metadata=kit.bad_metadata)
    filters = restore_jobs.catalog.restore_jobs.RestoreJobFilters()
    assert restore_jobs.list_jobs(both, caller, filters).items == []


def test_what_reads_the_registry_sees_a_registered_type(
    both: Deps, caller: Caller, kit: Kit, tmp_path: Path
) -> None:
    name = kit.plugin.type_name
    assert name in settings.supported_resource_types(both)
    assert settings.region_settings(both, caller)["opt_in"][name] is True
    settings.update_region_settings(both, caller, opt_in={name: False}, management=None)
    assert settings.region_settings(both, caller)["opt_in"][name] is False
    row = _register(both, caller, kit, tmp_path)
    everything = {"SelectionName": "all", "IamRoleArn": ROLE}
    [preview] = selections.preview(both, caller, everything)
    assert (preview["ResourceArn"], preview["Selected"]) == (row["arn"], True)
    assert set(selections.resolve([everything], [row], both.plugins.types())) == {row["arn"]}
    assert selections.resolve([everything], [row], ()) == {}


def test_types_that_are_not_registered_are_refused_everywhere(deps: Deps, caller: Caller) -> None:
    assert settings.supported_resource_types(deps) == list(deps.plugins.types())
    assert "InMemory" not in deps.plugins
    with pytest.raises(InvalidInput, match="not supported"):
        resources.register(deps, caller, resource_type="InMemory", name="x", source="y")
    with pytest.raises(InvalidInput, match="unsupported resource type 'InMemory'"):
        settings.update_region_settings(deps, caller, opt_in={"InMemory": True}, management=None)


def test_a_failing_after_restore_check_fails_the_job(
    deps: Deps, caller: Caller, tmp_path: Path
) -> None:
    plugin = InMemoryPlugin({"src": CONTENT}, check=lambda data: f"{len(data)} bytes is too many")
    deps = dataclasses.replace(deps, plugins=Registry([plugin]))
    arn = resources.register(deps, caller, resource_type="InMemory", name="m", source="src")["arn"]
    rp_arn = _field(_backed_up(deps, caller, arn), "recovery_point_arn")
    restore = _restored(deps, caller, rp_arn, {"targetName": "copy"})
    assert _field(restore, "status") == "FAILED"
    assert _field(restore, "status_message") == (
        f"the restored InMemory did not pass its check: {len(CONTENT)} bytes is too many"
    )
