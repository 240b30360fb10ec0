"""A SQLite catalog has one server (docs/operations/scale-out.md): a second `snowvault
server` (or `run`) on its data directory, or on another data directory whose config.json
names the same SQLite file, is refused in one line with a non-zero exit, and the first
keeps serving with nothing lost. Readers beside it (`cost report`) still open the
catalog, and servers on one PostgreSQL catalog still share a data directory (a fleet).

Before the fix the second server started: both ran a scheduler, sweeps and a worker on
one SQLite file (server.lock is held shared by every server).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from helpers.sv_server import SNOWVAULT, ServerProcess, free_port, new_server
from snowvault import app as app_mod
from snowvault.core import private_files
from snowvault.core.errors import Conflict

PG = "postgresql://postgres@127.0.0.1:5432"


@pytest.fixture
def first(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = new_server(tmp_path_factory)
    server.init()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _second(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SNOWVAULT, *args],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _assert_refused(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode != 0, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "a SQLite catalog has one server" in lines[0]
    assert "listening" not in done.stdout


def test_a_second_server_on_the_same_sqlite_data_dir_is_refused(first: ServerProcess) -> None:
    backup = first.client()
    backup.create_backup_vault(BackupVaultName="kept")
    port = str(free_port())
    data = str(first.data_dir)
    _assert_refused(_second(first, "server", "--data-dir", data, "--port", port))
    _assert_refused(_second(first, "server", "--data-dir", data, "--port", port, "--test-mode"))
    _assert_refused(_second(first, "run", "--data-dir", data, "--port", port))
    # the first still serves, with what it had
    assert first.proc is not None and first.proc.poll() is None
    names = [v["BackupVaultName"] for v in backup.list_backup_vaults()["BackupVaultList"]]
    assert "kept" in names
    # a reader beside the running server still opens the catalog
    report = _second(first, "cost", "report", "--data-dir", data, "--json")
    assert report.returncode == 0, report.stderr
    # once the first has stopped, a server starts on the data directory again
    first.stop()
    first.start()
    names = [v["BackupVaultName"] for v in first.client().list_backup_vaults()["BackupVaultList"]]
    assert "kept" in names


def test_another_data_dir_naming_the_same_sqlite_catalog_is_refused(
    first: ServerProcess, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir(mode=0o700)
    for name in ("config.json", "root.key", "sns-signing.key", "sns-signing.crt"):
        if (first.data_dir / name).exists():
            shutil.copy2(first.data_dir / name, other / name)
    config = json.loads((other / "config.json").read_text())
    assert config["catalog_url"] == f"sqlite:///{first.data_dir / 'catalog.db'}"
    config["port"] = free_port()
    (other / "config.json").write_text(json.dumps(config))
    (other / "config.json").chmod(0o600)
    _assert_refused(_second(first, "server", "--data-dir", str(other)))
    # the same file through a symlinked directory
    (tmp_path / "alias").symlink_to(first.data_dir)
    config["catalog_url"] = f"sqlite:///{tmp_path / 'alias' / 'catalog.db'}"
    (other / "config.json").write_text(json.dumps(config))
    _assert_refused(_second(first, "server", "--data-dir", str(other)))
    assert first.client().list_backup_vaults()["BackupVaultList"] is not None


def test_the_sole_server_lock_in_process(tmp_path: Path) -> None:
    """Two serving Apps on one SQLite catalog: the second is Conflict before it touches
    the catalog; a reader App is not; the lock is 0600 and freed by close()."""
    data = tmp_path / "d"
    app_mod.initialize(data, allowed_paths=[str(tmp_path)])
    one = app_mod.build(data, serving=True)
    try:
        with pytest.raises(Conflict, match="a SQLite catalog has one server"):
            app_mod.build(data, serving=True)
        app_mod.build(data).close()  # a reader shares server.lock
        lock = data / f"catalog.db{private_files.SOLE_SERVER_SUFFIX}"
        assert lock.stat().st_mode & 0o777 == 0o600
    finally:
        one.close()
    app_mod.build(data, serving=True).close()  # freed with the first


def test_servers_on_a_postgresql_catalog_may_share_a_data_dir(tmp_path: Path) -> None:
    name = f"sv_second_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        data = tmp_path / "d"
        app_mod.initialize(data, catalog_url=f"{PG}/{name}", allowed_paths=[str(tmp_path)])
        one = app_mod.build(data, serving=True)
        try:
            app_mod.build(data, serving=True).close()
        finally:
            one.close()
        assert not list(data.glob(f"*{private_files.SOLE_SERVER_SUFFIX}"))
    finally:
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_server_started_during_an_offline_tool_says_what_holds_the_lock(
    tmp_path: Path,
) -> None:
    """`root-key rotate` holds server.lock exclusive; a server started meanwhile used to
    say that "a snowvault server is running" (there was none)."""
    data = tmp_path / "d"
    app_mod.initialize(data, allowed_paths=[str(tmp_path)])
    with private_files.ServerLock(data).exclusive():
        with pytest.raises(Conflict, match="an offline snowvault command"):
            app_mod.build(data, serving=True)
        with pytest.raises(Conflict, match="an offline snowvault command"):
            app_mod.build(data)
    app_mod.build(data, serving=True).close()
