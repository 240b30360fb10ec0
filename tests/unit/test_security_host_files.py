"""Least privilege on the host, in process: private files, the start-up tightening walk,
where the root key comes from and when it is refused, rotate and move.

The server-level stories (through HTTP, another user, a non-root server) are in
tests/acceptance/test_security_host.py.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from snowvault import app as app_mod
from snowvault.control import catalog
from snowvault.control.services import root_key
from snowvault.core import private_files
from snowvault.core.errors import AlreadyExists, Conflict, InvalidInput
from snowvault.engine import crypto
from snowvault.engine.backends.local import LocalBackend


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def loose(root: Path) -> list[str]:
    """Every path under ``root`` (itself included) with a group/other bit, like
    ``find ROOT -perm /077`` (symlinks excluded: their mode means nothing)."""
    found = [] if root.is_symlink() or not mode(root) & 0o077 else [str(root)]
    for path in root.rglob("*"):
        if not path.is_symlink() and mode(path) & 0o077:
            found.append(str(path))
    return found


@pytest.fixture
def no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(app_mod.ROOT_KEY_ENV, raising=False)


@pytest.fixture
def data_dir(tmp_path: Path, no_env_key: None) -> Path:
    root = tmp_path / "data"
    app_mod.initialize(root)
    return root


# -- private files ----------------------------------------------------------------------


def test_private_files_ignore_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        private_files.make_dirs(tmp_path / "a" / "b")
        private_files.write_new(tmp_path / "a" / "b" / "f", b"x")
        private_files.replace(tmp_path / "a" / "b" / "g", b"y")
        store = LocalBackend(tmp_path / "store")
        store.put("data/00/0001", b"pack")
    finally:
        os.umask(old)
    assert loose(tmp_path / "a") == [] and loose(tmp_path / "store") == []
    assert mode(tmp_path / "store" / "data" / "00" / "0001") == 0o400
    assert mode(tmp_path / "store" / "data") == 0o700


def test_tighten_changes_only_group_other_bits_and_follows_no_symlink(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "theirs").write_text("x")
    (outside / "theirs").chmod(0o644)
    (root / "sub" / "f").write_text("x")
    (root / "sub" / "f").chmod(0o754)
    (root / "private").write_text("x")
    (root / "private").chmod(0o600)
    (root / "link").symlink_to(outside)
    (root / "sub").chmod(0o755)
    root.chmod(0o777)
    changed = private_files.tighten([root])
    assert sorted(changed) == sorted([root, root / "sub", root / "sub" / "f"])
    assert mode(root / "sub" / "f") == 0o700  # the owner's bits are kept
    assert mode(root / "private") == 0o600
    assert mode(outside / "theirs") == 0o644 and mode(outside) & 0o055  # not followed
    assert private_files.tighten([root]) == []  # nothing left to do


def test_server_lock_is_shared_by_servers_and_exclusive_for_offline_tools(tmp_path: Path) -> None:
    first = private_files.ServerLock(tmp_path).shared()
    second = private_files.ServerLock(tmp_path).shared()
    with pytest.raises(Conflict, match="a snowvault server is running"):
        private_files.ServerLock(tmp_path).exclusive()
    first.release()
    second.release()
    with private_files.ServerLock(tmp_path).exclusive():
        pass
    assert mode(tmp_path / private_files.LOCK_FILE) == 0o600


# -- init and start --------------------------------------------------------------------


def test_init_makes_everything_private(data_dir: Path) -> None:
    app = app_mod.build(data_dir)
    app.close()
    assert loose(data_dir) == []
    assert {p.name for p in data_dir.iterdir()} >= {"config.json", "root.key", "catalog.db"}


def test_start_tightens_a_loose_data_dir_with_one_warning(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for path in [data_dir, *data_dir.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    (data_dir / "root.key").chmod(0o600)  # a loose key is refused, not fixed (below)
    before = len(loose(data_dir))
    with caplog.at_level(logging.WARNING, logger="snowvault.app"):
        app_mod.build(data_dir).close()
    assert loose(data_dir) == []
    lines = [r.getMessage() for r in caplog.records if "tightened" in r.getMessage()]
    assert len(lines) == 1 and f"tightened permissions of {before} path(s)" in lines[0]


def test_a_loose_root_key_is_refused_with_the_fix(data_dir: Path) -> None:
    key = data_dir / "root.key"
    key.chmod(0o640)
    with pytest.raises(InvalidInput, match=r"accessible to group/other \(mode 640\)") as err:
        app_mod.build(data_dir)
    assert f"chmod 600 {key}" in str(err.value) and "rotate" in str(err.value)
    assert mode(key) == 0o640  # left for the operator to look at


def test_the_environment_variable_wins_and_must_be_hex(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = (data_dir / "root.key").read_bytes()
    (data_dir / "root.key").unlink()
    with pytest.raises(InvalidInput, match="cannot read the root key"):
        app_mod.build(data_dir)
    monkeypatch.setenv(app_mod.ROOT_KEY_ENV, "zz" * 32)
    with pytest.raises(InvalidInput, match="64 hex digits") as err:
        app_mod.build(data_dir)
    assert "zz" not in str(err.value)
    monkeypatch.setenv(app_mod.ROOT_KEY_ENV, key.hex())
    app = app_mod.build(data_dir)
    assert app.root_credentials().access_key_id
    app.close()


def test_a_key_that_does_not_open_the_catalog_is_refused(data_dir: Path) -> None:
    (data_dir / "root.key").unlink()
    private_files.write_new(data_dir / "root.key", os.urandom(32))
    with pytest.raises(InvalidInput, match="does not open this catalog"):
        app_mod.build(data_dir)


def test_init_with_the_environment_variable_writes_no_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(app_mod.ROOT_KEY_ENV, "ab" * 32)
    app_mod.initialize(tmp_path / "d")
    assert not (tmp_path / "d" / "root.key").exists()
    app = app_mod.build(tmp_path / "d")
    assert app.root_credentials()
    app.close()


# -- rotate and move ------------------------------------------------------------------


def test_rotate_reseals_and_keeps_the_old_key_aside(data_dir: Path) -> None:
    app = app_mod.build(data_dir)
    creds = app.root_credentials()
    key = app.kms.managed_backup_key(creds.account_id, "us-east-1")
    blob, _ = app.kms.wrap(str(key["arn"]), b"vault secret", b"aad", "test")
    app.close()
    old = (data_dir / "root.key").read_bytes()

    done = app_mod.rotate_root_key(data_dir)

    assert done.resealed is not None and done.resealed.access_keys == 1
    assert done.resealed.kms_versions == 1
    new = (data_dir / "root.key").read_bytes()
    assert new != old and len(new) == 32
    assert done.old_key_file is not None and done.old_key_file.read_bytes() == old
    assert loose(data_dir) == []
    app = app_mod.build(data_dir)
    assert app.lookup_key(creds.access_key_id) == creds
    assert app.kms.unwrap(str(key["arn"]), blob, b"aad", "test") == b"vault secret"
    app.close()


def test_rotate_refuses_while_a_server_runs(data_dir: Path) -> None:
    app = app_mod.build(data_dir)
    try:
        with pytest.raises(Conflict, match="server is running"):
            app_mod.rotate_root_key(data_dir)
    finally:
        app.close()


def test_an_interrupted_rotation_is_finished_by_running_it_again(data_dir: Path) -> None:
    old = (data_dir / "root.key").read_bytes()
    new = os.urandom(32)
    engine = catalog.db.create_engine(f"sqlite:///{data_dir / 'catalog.db'}")
    root_key.reseal(engine, old, new)  # the catalog committed, the rename never happened
    engine.dispose()
    private_files.write_new(data_dir / "root.key.new", new)
    with pytest.raises(InvalidInput, match=r"interrupted .* left .*root\.key\.new"):
        app_mod.build(data_dir)
    done = app_mod.rotate_root_key(data_dir)
    assert done.resealed is None and (data_dir / "root.key").read_bytes() == new
    app_mod.build(data_dir).close()


def test_rotate_with_the_key_in_the_environment_writes_hex(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(app_mod.ROOT_KEY_ENV, (data_dir / "root.key").read_bytes().hex())
    with pytest.raises(InvalidInput, match="--new-key-file"):
        app_mod.rotate_root_key(data_dir)
    done = app_mod.rotate_root_key(data_dir, new_key_file=str(tmp_path / "new.hex"))
    assert done.from_env and mode(tmp_path / "new.hex") == 0o600
    with pytest.raises(InvalidInput, match="does not open"):
        app_mod.build(data_dir)  # the variable still holds the old key
    monkeypatch.setenv(app_mod.ROOT_KEY_ENV, (tmp_path / "new.hex").read_text().strip())
    app_mod.build(data_dir).close()


def test_move_puts_the_key_outside_the_data_dir(data_dir: Path, tmp_path: Path) -> None:
    key = (data_dir / "root.key").read_bytes()
    target = tmp_path / "etc" / "snowvault" / "root.key"
    assert app_mod.move_root_key(data_dir, target) == target
    assert not (data_dir / "root.key").exists() and target.read_bytes() == key
    assert mode(target) == 0o600 and mode(target.parent) == 0o700
    assert app_mod.ServerConfig.load(data_dir).root_key_file == str(target)
    with pytest.raises(AlreadyExists):
        app_mod.move_root_key(data_dir, target)
    app = app_mod.build(data_dir)
    creds = app.root_credentials()
    app.close()
    done = app_mod.rotate_root_key(data_dir)  # rotates where the key now lives
    assert done.key_file == target and target.read_bytes() != key
    app = app_mod.build(data_dir)
    assert app.lookup_key(creds.access_key_id) == creds
    app.close()


def test_bootstrap_secret_is_sealed_under_the_root_key(data_dir: Path) -> None:
    box = crypto.SecretBox((data_dir / "root.key").read_bytes(), "access-keys")
    engine = catalog.db.create_engine(f"sqlite:///{data_dir / 'catalog.db'}")
    with catalog.db.read_transaction(engine) as conn:
        rows = catalog.sealed_secrets.access_keys(conn)
    engine.dispose()
    assert len(rows) == 1
    assert box.open(rows[0]["sealed_secret"], rows[0]["access_key_id"].encode())
