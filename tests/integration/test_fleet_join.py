"""`snowvault init --join FIRST_DIR` (app.join): one more server's data directory for a
fleet, from the attacker's and the operator's side — what it copies (root key 0600,
the notification signing key), what it refuses with one line (a SQLite catalog, a vault
location in one host's directory, a loose root key copy, a key that does not open the
catalog, a shared trail prefix), and that it adds nothing to the catalog."""

from __future__ import annotations

import json
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from snowvault import app
from snowvault.control import catalog
from snowvault.core.errors import InvalidInput
from snowvault.interfaces.cli import server_cmd

PG = "postgresql://postgres@127.0.0.1:5432"
S3 = "s3://fleet-bucket/vaults"


@pytest.fixture
def pg_url() -> Iterator[str]:
    name = f"sv_join_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG}/{name}"
    finally:
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def first(tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(app.ROOT_KEY_ENV, raising=False)
    data = tmp_path / "sv1"
    app.initialize(
        data,
        catalog_url=pg_url,
        storage={"us-east-1": S3},
        allowed_paths=[str(tmp_path)],
        public_endpoint="https://backup.example",
    )
    return data


def _accounts(pg_url: str) -> int:
    engine = catalog.db.create_engine(pg_url)
    try:
        with catalog.db.read_transaction(engine) as conn:
            return len(catalog.accounts.list_accounts(conn))
    finally:
        engine.dispose()


def test_join_copies_the_fleet_config_and_keys_privately(first: Path, tmp_path: Path) -> None:
    accounts = _accounts(app.ServerConfig.load(first).catalog_url)
    result = app.join(tmp_path / "sv2", first, port=9000)
    joined = app.ServerConfig.load(result.data_dir)
    source = app.ServerConfig.load(first)
    assert joined.catalog_url == source.catalog_url
    assert joined.regions == {"us-east-1": S3} == source.regions
    assert joined.allowed_paths == source.allowed_paths
    assert joined.port == 9000 and joined.endpoint == "https://backup.example"
    assert set(result.copied) == {"root.key", *app.SIGNING_FILES}
    for name in result.copied:
        copy = result.data_dir / name
        assert stat.S_IMODE(copy.stat().st_mode) == 0o600
        assert copy.read_bytes() == (first / name).read_bytes()
    assert stat.S_IMODE(result.data_dir.stat().st_mode) == 0o700
    assert _accounts(joined.catalog_url) == accounts  # nothing new in the catalog
    built = app.build(result.data_dir)  # the copy opens the catalog's sealed values
    built.close()


def test_a_root_key_copy_others_may_read_is_refused(first: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("config.json", "root.key"):
        (copy / name).write_bytes((first / name).read_bytes())
    os.chmod(copy / "root.key", 0o644)  # a careless scp
    with pytest.raises(InvalidInput, match="chmod 600"):
        app.join(tmp_path / "sv2", copy)
    assert not (tmp_path / "sv2").exists()


def test_a_wrong_root_key_is_refused(first: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "config.json").write_bytes((first / "config.json").read_bytes())
    fd = os.open(copy / "root.key", os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, os.urandom(32))
    os.close(fd)
    with pytest.raises(InvalidInput, match="does not open this catalog"):
        app.join(tmp_path / "sv2", copy)


def test_a_sqlite_catalog_or_local_vaults_cannot_make_a_fleet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first: Path
) -> None:
    monkeypatch.delenv(app.ROOT_KEY_ENV, raising=False)
    lone = tmp_path / "lone"
    app.initialize(lone, allowed_paths=[str(tmp_path)])
    with pytest.raises(InvalidInput, match="SQLite catalog"):
        app.join(tmp_path / "sv2", lone)
    config = json.loads((first / "config.json").read_text())
    config["regions"]["eu-west-1"] = str(tmp_path / "eu")  # one host's directory
    (first / "config.json").write_text(json.dumps(config))
    with pytest.raises(InvalidInput, match=r"eu-west-1=.*cannot be read by another server"):
        app.join(tmp_path / "sv3", first)


def test_a_shared_trail_prefix_is_refused(first: Path, tmp_path: Path) -> None:
    config = json.loads((first / "config.json").read_text())
    config["trail_location"] = "s3://trail-bucket/sv1"
    (first / "config.json").write_text(json.dumps(config))
    with pytest.raises(InvalidInput, match="--trail-location"):
        app.join(tmp_path / "sv2", first)
    with pytest.raises(InvalidInput, match="--trail-location"):
        app.join(tmp_path / "sv2", first, trail_location="s3://trail-bucket/sv1")
    result = app.join(tmp_path / "sv2", first, trail_location="s3://trail-bucket/sv2")
    assert app.ServerConfig.load(result.data_dir).trail_location == "s3://trail-bucket/sv2"


def test_the_cli_says_what_join_takes_from_the_first_server(first: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    clash = runner.invoke(
        server_cmd.init,
        ["--data-dir", str(tmp_path / "sv2"), "--join", str(first), "--region", "eu-west-1"],
    )
    assert clash.exit_code == 2 and "--join takes these from FIRST_DIR" in clash.output
    done = runner.invoke(
        server_cmd.init,
        ["--data-dir", str(tmp_path / "sv2"), "--join", str(first), "--port", "9001", "--json"],
    )
    assert done.exit_code == 0, done.output
    doc = json.loads(done.output)
    assert doc["listen"].endswith(":9001") and doc["endpoint"] == "https://backup.example"
    assert "secret" not in done.output.lower()


def test_storage_locations_are_checked_at_init(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no \\?options"):
        app.initialize(
            tmp_path / "x",
            storage={"us-east-1": "s3://b/p?endpoint_url=http://127.0.0.1:9"},
            allowed_paths=[str(tmp_path)],
        )
    assert not (tmp_path / "x").exists()


def test_root_key_rotation_waits_for_every_server_of_the_fleet(first: Path, tmp_path: Path) -> None:
    """Another server (its own data directory, so not seen by this one's server.lock)
    holds the delivery role while it runs: rotation is refused until it stops."""
    from snowvault.control.catalog import leadership
    from snowvault.control.scheduler import delivery
    from snowvault.core.errors import Conflict

    engine = catalog.db.create_engine(app.ServerConfig.load(first).catalog_url)
    running = leadership.Leadership(engine, tmp_path / "roles")
    try:
        assert running.hold(delivery.ROLE)
        with pytest.raises(Conflict, match="stop every server of the fleet first"):
            app.rotate_root_key(first)
        running.close()
        rotated = app.rotate_root_key(first)
        assert rotated.resealed is not None
    finally:
        running.close()
        engine.dispose()
