"""Least privilege on the host and the root key, against real `snowvault server` processes.

- after init + a backup + a restore through the server, nothing under the data directory
  has a group/other bit (``find DIR -perm /077`` is empty), and another user (``nobody``)
  can read neither root.key nor a pack, although every parent directory lets it through;
- a data directory chmod'ed 0755/0644 is tightened at start, with one warning line;
  a group-readable root.key stops the server with one line;
- `snowvault root-key rotate` with the server stopped: after a restart the old access
  keys (root and an IAM user's) still authenticate and an old recovery point restores;
- ExportRecoveryKey refuses a weak passphrase (400 InvalidParameterValueException naming
  the rule) and audits every attempt with principal, source IP, vault and time;
- a server running as an unprivileged user (``nobody`` with CAP_DAC_READ_SEARCH, as
  deploy/snowvault.service allows) backs up a root-owned tree and restores files owned
  by itself, while a root server restores the recorded owner.

The data directories live in a 0755 directory under /tmp (pytest's own tmp is 0700, which
would hide the data directory from ``nobody`` for the wrong reason). boto3 signs with the
wall clock.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

import snowvault
from helpers.sv_server import READY_LINE, SNOWVAULT, ServerProcess, free_port

ROLE = "arn:aws:iam::123456789012:role/backup"
OTHER_UID = 1234  # a recorded owner that is neither root nor the server's user
RUNUSER = shutil.which("runuser")
SETPRIV = shutil.which("setpriv")
STRONG = "correct horse battery staple"


class HostServer(ServerProcess):
    """A ServerProcess whose command can be prefixed (to run it as another user)."""

    prefix: list[str] = []

    def start(self) -> None:
        self.starts += 1
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [*self.prefix, SNOWVAULT, "server", "--data-dir", str(self.data_dir)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if READY_LINE in self.log.read_text(errors="replace"):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        pytest.fail(f"server did not start:\n{self.log.read_text(errors='replace')[-3000:]}")


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sv-host-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def make_server(base: Path, name: str) -> HostServer:
    home = base / f"{name}-home"
    home.mkdir(mode=0o755)
    server = HostServer(data_dir=base / f"{name}-data", home=home, port=free_port())
    server.init(lease_seconds=10, sweep_seconds=1, poll_seconds=0.2)
    path = server.data_dir / "config.json"
    config = json.loads(path.read_text())
    config["allowed_paths"] = [str(base / f"{name}-files")]
    path.write_text(json.dumps(config))
    (base / f"{name}-files").mkdir(mode=0o755)
    return server


@pytest.fixture(scope="module")
def server(base: Path) -> Iterator[HostServer]:
    server = make_server(base, "root")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def poll(fetch: Any, key: str, final: set[str], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        doc: dict[str, Any] = fetch()
        if doc[key] in final or time.monotonic() > deadline:
            return doc
        time.sleep(0.2)


def ensure_vault(server: ServerProcess, vault: str) -> None:
    """The vault exists (tests of one module may run on different xdist workers, each
    with its own server, so none may count on another test having made it)."""
    client = server.client()
    with_vault = {v["BackupVaultName"] for v in client.list_backup_vaults()["BackupVaultList"]}
    if vault not in with_vault:
        client.create_backup_vault(BackupVaultName=vault)


def backup_of(server: ServerProcess, vault: str, name: str, source: Path) -> dict[str, Any]:
    client = server.client()
    ensure_vault(server, vault)
    arn = server.ext(
        "RegisterResource", {"ResourceType": "Directory", "Name": name, "Source": str(source)}
    )["ResourceArn"]
    job = client.start_backup_job(BackupVaultName=vault, ResourceArn=arn, IamRoleArn=ROLE)
    done = poll(
        lambda: client.describe_backup_job(BackupJobId=job["BackupJobId"]),
        "State",
        {"COMPLETED", "PARTIAL", "FAILED", "ABORTED", "EXPIRED"},
    )
    assert done["State"] == "COMPLETED", done
    return done


def restore_of(server: ServerProcess, rp_arn: str, target: Path, **creds: str) -> dict[str, Any]:
    client = server.client(**creds)
    job = client.start_restore_job(
        RecoveryPointArn=rp_arn, Metadata={"targetPath": str(target)}, IamRoleArn=ROLE
    )
    return poll(
        lambda: client.describe_restore_job(RestoreJobId=job["RestoreJobId"]),
        "Status",
        {"COMPLETED", "FAILED", "ABORTED"},
    )


def make_source(root: Path, owner: int) -> Path:
    root.mkdir(mode=0o700)
    (root / "secret.txt").write_text("only root may read this\n")
    (root / "secret.txt").chmod(0o600)
    (root / "sub").mkdir(mode=0o700)
    (root / "sub" / "data.bin").write_bytes(os.urandom(70_000))
    for path in (root, root / "secret.txt", root / "sub", root / "sub" / "data.bin"):
        os.chown(path, owner, owner)
    return root


def loose_paths(root: Path) -> list[str]:
    found = subprocess.run(
        ["find", str(root), "-perm", "/077", "!", "-type", "l"],
        capture_output=True,
        text=True,
        check=True,
    )
    return found.stdout.split()


def as_nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    assert RUNUSER is not None
    return subprocess.run(
        [RUNUSER, "-u", "nobody", "--", *argv], capture_output=True, text=True, timeout=30
    )


def a_pack(data_dir: Path) -> Path:
    packs = [p for p in (data_dir / "storage").rglob("*") if p.is_file() and "/data/" in str(p)]
    assert packs, "no pack written"
    return packs[0]


# -- files and modes ------------------------------------------------------------------


def test_nothing_under_the_data_dir_is_readable_by_another_user(
    server: HostServer, base: Path
) -> None:
    source = make_source(base / "root-files" / "src", owner=OTHER_UID)
    job = backup_of(server, "host", "host-src", source)
    restored = restore_of(server, job["RecoveryPointArn"], base / "root-files" / "back")
    assert restored["Status"] == "COMPLETED", restored
    back = base / "root-files" / "back"
    assert (back / "secret.txt").read_text() == "only root may read this\n"
    # a root server gives restored files their recorded owner
    assert (back / "secret.txt").stat().st_uid == OTHER_UID

    assert loose_paths(server.data_dir) == []
    if RUNUSER is None:
        pytest.skip("runuser is missing: the other-user half is not checked")
    assert as_nobody("ls", str(base)).returncode == 0  # the way in is open ...
    for path in (server.data_dir / "root.key", a_pack(server.data_dir)):
        refused = as_nobody("cat", str(path))  # ... the files are not
        assert refused.returncode != 0 and "Permission denied" in refused.stderr, path
    assert as_nobody("ls", str(server.data_dir)).returncode != 0


def test_a_loose_data_dir_is_tightened_at_start(server: HostServer) -> None:
    server.stop()
    for path in [server.data_dir, *server.data_dir.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    (server.data_dir / "root.key").chmod(0o600)
    loose = len(loose_paths(server.data_dir))
    assert loose > 10
    server.start()
    assert loose_paths(server.data_dir) == []
    lines = [x for x in server.log.read_text().splitlines() if "tightened permissions" in x]
    assert len(lines) == 1 and f"of {loose} path(s)" in lines[0], lines
    assert "WARNING" in lines[0]


def test_a_group_readable_root_key_stops_the_server(server: HostServer) -> None:
    server.stop()
    key = server.data_dir / "root.key"
    key.chmod(0o640)
    try:
        done = subprocess.run(
            [SNOWVAULT, "server", "--data-dir", str(server.data_dir)],
            env=server.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        key.chmod(0o600)
    assert done.returncode != 0
    errors = [x for x in done.stderr.splitlines() if "root key" in x]
    assert len(errors) == 1 and "refusing to start" in errors[0] and "chmod 600" in errors[0]
    server.start()


# -- root key rotation ----------------------------------------------------------------


def test_rotation_keeps_old_access_keys_and_recovery_points(server: HostServer, base: Path) -> None:
    user = server.ext("CreateUser", {"UserName": "rotator"})
    assert user
    key = server.ext("CreateAccessKey", {"UserName": "rotator"})["AccessKey"]
    source = base / "root-files" / "rot"
    source.mkdir()
    (source / "a.txt").write_text("before the rotation\n")
    job = backup_of(server, "host", "rot-src", source)
    old_key = (server.data_dir / "root.key").read_bytes()

    refused = subprocess.run(
        [SNOWVAULT, "root-key", "rotate", "--data-dir", str(server.data_dir)],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0 and "server is running" in refused.stderr
    server.stop()
    rotated = subprocess.run(
        [SNOWVAULT, "root-key", "rotate", "--data-dir", str(server.data_dir), "--json"],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rotated.returncode == 0, rotated.stderr
    doc = json.loads(rotated.stdout)
    assert doc["resealed_access_keys"] == 2 and doc["resealed_kms_versions"] >= 1
    assert (server.data_dir / "root.key").read_bytes() != old_key
    assert Path(doc["old_key_file"]).read_bytes() == old_key
    server.start()

    assert server.client().list_backup_vaults()["BackupVaultList"]  # root's old key
    as_user = server.client(key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    with pytest.raises(ClientError) as denied:  # authenticated, then refused by policy
        as_user.list_backup_vaults()
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    target = base / "root-files" / "rot-back"
    restored = restore_of(server, job["RecoveryPointArn"], target)
    assert restored["Status"] == "COMPLETED", restored
    assert (target / "a.txt").read_text() == "before the rotation\n"
    assert loose_paths(server.data_dir) == []


# -- ExportRecoveryKey ----------------------------------------------------------------


@pytest.mark.parametrize("weak", ["aaaaaaaaaaaaaaaa", "123456789abc", "Password1234", "short"])
def test_export_refuses_a_weak_passphrase(server: HostServer, weak: str) -> None:
    ensure_vault(server, "host")
    resp = server.signed(
        "POST",
        "/_snowvault/v1/ExportRecoveryKey",
        json.dumps({"BackupVaultName": "host", "Passphrase": weak}).encode(),
        **{"Content-Type": "application/json"},
    )
    doc = json.loads(resp.data)
    assert resp.status == 400, doc
    assert doc["__type"] == "InvalidParameterValueException"
    assert "12 characters" in doc["message"] and "50 bits" in doc["message"]
    assert weak not in doc["message"]


def test_export_is_audited_with_the_caller(server: HostServer) -> None:
    ensure_vault(server, "host")
    out = server.ext("ExportRecoveryKey", {"BackupVaultName": "host", "Passphrase": STRONG})
    vault_arn = out["BackupVaultArn"]
    principal = f"arn:aws:iam::{server.creds['account_id']}:root"
    lines = [x for x in server.log.read_text().splitlines() if "audit: ExportRecoveryKey" in x]
    exported = [x for x in lines if "outcome=exported" in x]
    assert len(exported) == 1, lines
    line = exported[0]
    assert f"vault={vault_arn}" in line and f"slot={out['KeySlotId']}" in line
    assert f"principal={principal}" in line and "source_ip=127.0.0.1" in line
    assert " time=20" in line and STRONG not in line
    refused = [x for x in lines if "outcome=refused" in x and "weak-passphrase" in x]
    assert refused and all("source_ip=127.0.0.1" in x for x in refused)


# -- a server that is not root --------------------------------------------------------


def _readable_by(user: pwd.struct_passwd, path: Path) -> bool:
    """access(2) as ``user`` (real uid, no capabilities): what Alembic asks at start."""
    assert SETPRIV is not None
    argv = [SETPRIV, f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]
    return subprocess.run([*argv, "test", "-r", str(path)], check=False).returncode == 0


@pytest.mark.skipif(SETPRIV is None or os.geteuid() != 0, reason="needs root and setpriv")
def test_a_non_root_server_restores_files_as_itself(base: Path) -> None:
    nobody = pwd.getpwnam("nobody")
    server = make_server(base, "nobody")
    for path in [
        server.data_dir,
        *server.data_dir.rglob("*"),
        server.home,
        *server.home.rglob("*"),
    ]:
        os.chown(path, nobody.pw_uid, nobody.pw_gid, follow_symlinks=False)
    files = base / "nobody-files"
    os.chown(files, nobody.pw_uid, nobody.pw_gid)
    source = make_source(files / "src", owner=OTHER_UID)  # unreadable to nobody by mode
    assert SETPRIV is not None
    # as deploy/snowvault.service: an unprivileged user, only CAP_DAC_READ_SEARCH kept
    server.prefix = [
        SETPRIV,
        f"--reuid={nobody.pw_uid}",
        f"--regid={nobody.pw_gid}",
        "--clear-groups",
        "--inh-caps=+dac_read_search",
        "--ambient-caps=+dac_read_search",
    ]
    if not _readable_by(nobody, Path(snowvault.__file__).parent):
        # a checkout under a 0700 directory (mktemp -d): the server must say so in one line
        with pytest.raises(pytest.fail.Exception):
            server.start()
        log = server.log.read_text(errors="replace")
        assert f"cannot be read by uid {nobody.pw_uid}: install snowvault where" in log, log
        assert "Traceback" not in log, log
        return
    server.start()
    try:
        job = backup_of(server, "vault", "src", source)
        target = files / "back"
        restored = restore_of(server, job["RecoveryPointArn"], target)
        assert restored["Status"] == "COMPLETED", restored
        for path in (target / "secret.txt", target / "sub" / "data.bin"):
            st = path.stat()
            assert (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid), path
        assert (target / "secret.txt").read_text() == "only root may read this\n"
        assert (target / "secret.txt").stat().st_mode & 0o777 == 0o600  # the mode is kept
        assert loose_paths(server.data_dir) == []
    finally:
        server.stop(signal.SIGTERM)
