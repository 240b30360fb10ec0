"""The whole story through the ``snowvault`` command, each step a subprocess with --json.

The server is conftest's ``snowvault_server`` (a subprocess on a free loopback port); the
CLI finds it through the profile ``snowvault init`` wrote under the server's private
XDG_CONFIG_HOME, as a user's CLI would.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from helpers.stories import sv, sv_json
from helpers.sv_server import SNOWVAULT, ServerProcess


def _make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "hello.txt": b"hello snowvault\n",
        "docs/notes.md": b"# notes\n" * 100,
        "docs/deep/blob.bin": bytes(range(256)) * 4096,
        "empty": b"",
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def test_backup_and_restore_story(snowvault_server: ServerProcess, tmp_path: Path) -> None:
    source = tmp_path / "source"
    files = _make_tree(source)

    vault = sv_json(snowvault_server, "vault", "create", "story", "--tag", "team=ops")
    assert vault["BackupVaultName"] == "story"
    assert "story" in [v["BackupVaultName"] for v in sv_json(snowvault_server, "vault", "list")]

    resource = sv_json(
        snowvault_server,
        "resource",
        "add",
        "directory",
        str(source),
        "--name",
        "docs",
        "--tag",
        "env=t",
    )
    assert resource["Source"] == str(source)
    assert resource["Tags"] == {"env": "t"}
    listed = sv_json(snowvault_server, "resource", "list")
    assert [r["Name"] for r in listed] == ["docs"]

    job = sv_json(
        snowvault_server, "backup", "start", "--resource", "docs", "--vault", "story", "--wait"
    )
    assert job["State"] == "COMPLETED", job
    rp_arn = job["RecoveryPointArn"]

    points = sv_json(snowvault_server, "recovery-point", "list", "--vault", "story")
    assert [p["RecoveryPointArn"] for p in points] == [rp_arn]
    by_resource = sv_json(snowvault_server, "recovery-point", "list", "--resource", "docs")
    assert [p["RecoveryPointArn"] for p in by_resource] == [rp_arn]
    described = sv_json(
        snowvault_server, "recovery-point", "describe", rp_arn.rsplit(":", 1)[1], "--vault", "story"
    )
    assert described["Status"] == "COMPLETED"

    entries = sv_json(snowvault_server, "recovery-point", "ls", rp_arn, "/", "-r")
    paths = {e["Path"].strip("/") for e in entries}
    assert set(files) <= paths

    target = tmp_path / "restored"
    restore = sv_json(
        snowvault_server,
        "restore",
        "start",
        "--recovery-point",
        rp_arn,
        "--to",
        str(target),
        "--wait",
    )
    assert restore["Status"] == "COMPLETED", restore
    for rel, data in files.items():
        assert (target / rel).read_bytes() == data, rel

    jobs = sv_json(snowvault_server, "job", "list")
    assert {j["JobType"] for j in jobs} == {"backup", "restore"}

    sv_json(snowvault_server, "recovery-point", "delete", rp_arn, "--vault", "story")
    assert sv_json(snowvault_server, "recovery-point", "list", "--vault", "story") == []
    sv_json(snowvault_server, "resource", "remove", "docs")
    sv_json(snowvault_server, "vault", "delete", "story")
    assert "story" not in [v["BackupVaultName"] for v in sv_json(snowvault_server, "vault", "list")]


def test_missing_vault_is_one_line_and_a_not_found_exit_code(
    snowvault_server: ServerProcess,
) -> None:
    done = sv(snowvault_server, "vault", "describe", "no-such-vault", ok=False)
    assert done.returncode == 3
    assert done.stderr.count("\n") == 1
    # the API answers AWS's 403 for a vault that does not exist; the CLI says what it means
    assert done.stderr.startswith("snowvault: error: vault not found: no-such-vault")
    assert done.stdout == ""


def test_backup_into_a_missing_vault_fails_cleanly(
    snowvault_server: ServerProcess, tmp_path: Path
) -> None:
    (tmp_path / "f").write_bytes(b"x")
    sv_json(snowvault_server, "resource", "add", "directory", str(tmp_path), "--name", "lonely")
    try:
        done = sv(
            snowvault_server, "backup", "start", "--resource", "lonely", "--vault", "nope", ok=False
        )
        assert done.returncode == 3, done.stderr
        assert done.stderr.count("\n") == 1
    finally:
        sv_json(snowvault_server, "resource", "remove", "lonely")


def test_unknown_resource_name_is_not_found(snowvault_server: ServerProcess) -> None:
    done = sv(snowvault_server, "resource", "describe", "ghost", ok=False)
    assert done.returncode == 3
    assert done.stderr.strip() == "snowvault: error: resource not found: ghost"


def test_wrong_secret_is_refused(snowvault_server: ServerProcess) -> None:
    env = dict(
        snowvault_server.env, AWS_ACCESS_KEY_ID="AKIANOTAKEY000000000", AWS_SECRET_ACCESS_KEY="x"
    )
    done = subprocess.run(
        [SNOWVAULT, "vault", "list"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 6, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1
