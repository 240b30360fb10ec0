"""PostgreSQL snapshots through the services, a real worker and a real vault, against
real servers: a throwaway cluster (tests/helpers/pg_cluster.py) as the source and the
machine's 127.0.0.1:5432 (trust, user postgres) as a restore target.

A snapshot restores into a directory that starts with identical rows, or database by
database into a running server under a new name; a second snapshot after a 1% change
stores little; a wrong password, a role without REPLICATION and a closed port end the
job FAILED with one line that never holds the password."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from helpers import plugin_stories as story
from helpers import service_world as world
from helpers.pg_cluster import PgCluster, digest_of, free_port
from snowvault.control.services import resources
from snowvault.control.services.base import Caller, Deps
from snowvault.testing import FakeClock

PASSWORD = "b4ckup-Pa55"
TARGET = "postgresql://postgres@127.0.0.1:5432"
ROWS = 20_000


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    with PgCluster() as pg:
        pg.create_role("backup", PASSWORD, replication=True)
        pg.create_role("plain", PASSWORD)
        pg.execute("CREATE DATABASE shop")
        pg.execute(
            "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric);"
            f"INSERT INTO items SELECT g, 'item ' || g, g * 1.5 FROM generate_series(1, {ROWS}) g;"
            "CREATE TABLE notes (id serial PRIMARY KEY, body text);"
            "INSERT INTO notes (body) SELECT md5(g::text) FROM generate_series(1, 500) g;",
            db="shop",
        )
        pg.execute("CHECKPOINT")
        yield pg


@pytest.fixture
def host_dir() -> Iterator[Path]:
    """Restore targets live here: a directory the postgres user can walk into (pytest's
    tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="sv-pgtarget-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def deps(tmp_path: Path, clock: FakeClock, host_dir: Path) -> Iterator[Deps]:
    deps = world.make_deps(tmp_path, clock, allow=[host_dir])
    yield deps
    deps.engine.dispose()


@pytest.fixture
def caller(deps: Deps) -> Caller:
    return story.make_caller(deps)  # with vault "v"


def _register(deps: Deps, caller: Caller, dsn: str, name: str = "shop-db") -> str:
    row = resources.register(
        deps, caller, resource_type="PostgreSQL", name=name, source=dsn, properties={}
    )
    assert PASSWORD not in str(row)
    return str(row["arn"])


def _stored(deps: Deps) -> int:
    root = Path(deps.storage.regions["us-east-1"])
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def test_a_snapshot_restores_to_a_directory_that_starts_with_identical_rows(
    deps: Deps, caller: Caller, cluster: PgCluster, host_dir: Path
) -> None:
    done = story.backup(deps, caller, _register(deps, caller, cluster.dsn("backup", PASSWORD)))
    assert done.state == "COMPLETED", done.status_message
    assert done.percent_done == 100.0 and done.backup_size_in_bytes > 0
    target = host_dir / "restored"
    restore = story.restore(deps, caller, done.recovery_point_arn, {"targetDirectory": str(target)})
    assert restore.status == "COMPLETED", restore.status_message
    assert restore.created_resource_arn.endswith(f":postgresql/{str(target).lstrip('/')}")
    assert (target / "PG_VERSION").exists() and not (target / "postmaster.pid").exists()
    assert os.stat(target).st_mode & 0o777 == 0o700
    restored = PgCluster.adopt(str(target)).start()
    try:
        for table in ("items", "notes"):
            assert restored.digest("shop", table) == cluster.digest("shop", table)
    finally:
        restored.cleanup()
    checked = {"targetDirectory": str(host_dir / "again"), "validationQuery": "SELECT * FROM gone"}
    failed = story.restore(deps, caller, done.recovery_point_arn, checked)
    assert failed.status == "FAILED"
    assert failed.status_message == (
        'the restored PostgreSQL did not pass its check: relation "gone" does not exist'
    )


def test_a_snapshot_restores_one_database_into_a_server_under_a_new_name(
    deps: Deps, caller: Caller, cluster: PgCluster, host_dir: Path, monkeypatch: Any
) -> None:
    work = host_dir / "work"  # where the temporary instance lives (and must be gone after)
    work.mkdir(mode=0o755)
    monkeypatch.setattr(tempfile, "tempdir", str(work))
    done = story.backup(deps, caller, _register(deps, caller, cluster.dsn("backup", PASSWORD)))
    assert done.state == "COMPLETED", done.status_message
    name = f"sv_restored_{uuid.uuid4().hex[:8]}"
    metadata = {"targetDsn": TARGET, "databases": "shop", "renameTo": name}
    try:
        restore = story.restore(deps, caller, done.recovery_point_arn, metadata)
        assert restore.status == "COMPLETED", restore.status_message
        assert restore.created_resource_arn.endswith(f"127.0.0.1:5432/{name}")
        conninfo = f"host=127.0.0.1 port=5432 user=postgres dbname={name}"
        for table in ("items", "notes"):
            assert digest_of(conninfo, table) == cluster.digest("shop", table)
        again = story.restore(deps, caller, done.recovery_point_arn, metadata)
        assert again.status == "FAILED"
        assert f"['{name}'] exist on 127.0.0.1:5432" in again.status_message
        assert digest_of(conninfo, "items") == cluster.digest("shop", "items")  # untouched
    finally:
        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres", autocommit=True) as c:
            c.execute(
                psycopg.sql.SQL("DROP DATABASE IF EXISTS {}").format(psycopg.sql.Identifier(name))
            )
    assert list(work.iterdir()) == []


def test_a_second_snapshot_after_a_small_change_stores_little(
    deps: Deps, caller: Caller, cluster: PgCluster
) -> None:
    arn = _register(deps, caller, cluster.dsn("backup", PASSWORD))
    before = _stored(deps)
    first = story.backup(deps, caller, arn)
    assert first.state == "COMPLETED", first.status_message
    after_first = _stored(deps)
    # 1% of the rows, the most recent ones (an update spread over every page of a table
    # changes every page: docs/resources/postgresql.md gives both figures)
    cluster.execute(
        f"UPDATE items SET price = price + 1 WHERE id > {ROWS - ROWS // 100}", db="shop"
    )
    second = story.backup(deps, caller, arn)
    assert second.state == "COMPLETED", second.status_message
    added = _stored(deps) - after_first
    assert added < (after_first - before) / 2, (added, after_first - before)


def test_a_passfile_serves_discovery_and_backups_without_a_sealed_password(
    deps: Deps, caller: Caller, cluster: PgCluster, tmp_path: Path
) -> None:
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"127.0.0.1:{cluster.port}:*:backup:{PASSWORD}\n")
    passfile.chmod(0o600)
    row = resources.register(
        deps,
        caller,
        resource_type="PostgreSQL",
        name="by-passfile",
        source=cluster.dsn("backup"),
        properties={"passfile": str(passfile)},
    )
    discovery = resources.describe(deps, caller, row["arn"])["discovery"]
    assert [d["Name"] for d in discovery["Databases"]] == ["postgres", "shop"]
    assert all(d["SizeInBytes"] > 0 for d in discovery["Databases"])
    assert discovery["ServerVersion"].split(".")[0].isdigit()
    done = story.backup(deps, caller, row["arn"])
    assert done.state == "COMPLETED", done.status_message


@pytest.mark.parametrize("case", ["wrong password", "no REPLICATION", "closed port"])
def test_connection_failures_fail_the_job_in_one_line_without_the_password(
    deps: Deps, caller: Caller, cluster: PgCluster, case: str
) -> None:
    dsn, expected = {
        "wrong password": (
            cluster.dsn("backup", "not-" + PASSWORD),
            'password authentication failed for user "backup"',
        ),
        "no REPLICATION": (cluster.dsn("plain", PASSWORD), "ALTER ROLE plain REPLICATION"),
        "closed port": (f"postgresql://backup:{PASSWORD}@127.0.0.1:{free_port()}", "refused"),
    }[case]
    done = story.backup(deps, caller, _register(deps, caller, dsn))
    assert done.state == "FAILED"
    message = done.status_message
    assert expected in message and "\n" not in message, message
    assert PASSWORD not in message and "Traceback" not in message


def test_a_cluster_configured_outside_its_data_directory_restores_to_one_that_starts(
    deps: Deps, caller: Caller, host_dir: Path
) -> None:
    """Debian's layout: the configuration files live outside the data directory. A
    superuser role reads them into the point; the restored directory gets them, without
    the lines naming the source's own paths, and starts."""
    with PgCluster(config_outside=True) as debian:
        debian.execute(f"CREATE ROLE admin LOGIN SUPERUSER REPLICATION PASSWORD '{PASSWORD}'")
        debian.execute("CREATE TABLE kept (id int); INSERT INTO kept SELECT generate_series(1, 50)")
        assert not (Path(debian.data_dir) / "postgresql.conf").exists()
        done = story.backup(
            deps, caller, _register(deps, caller, debian.dsn("admin", PASSWORD), "deb")
        )
        assert done.state == "COMPLETED", done.status_message
        target = host_dir / "restored"
        restore = story.restore(
            deps, caller, done.recovery_point_arn, {"targetDirectory": str(target)}
        )
        assert restore.status == "COMPLETED", restore.status_message
        conf = (target / "postgresql.conf").read_text()
        assert f"#snowvault: data_directory = '{debian.data_dir}'" in conf
        assert "#snowvault: hba_file" in conf and "wal_level = replica" in conf
        assert (target / "pg_hba.conf").read_text() == Path(
            debian.config_dir, "pg_hba.conf"
        ).read_text()
        restored = PgCluster.adopt(str(target)).start()
        try:
            assert restored.digest("postgres", "kept") == debian.digest("postgres", "kept")
        finally:
            restored.cleanup()
