"""Host paths are the operator's decision, over HTTP against a real server subprocess:
RegisterResource and StartRestoreJob refuse what the rule refuses (outside the allowed
roots, the data directory and every vault's storage, a symlink or ``..`` leading there)
with AccessDeniedException naming the rule, and no job is created; what the rule allows
still works. A second server shows init's default rule (HOME except HOME/.*) with
quickstart working under it, and a config.json without the keys (a data dir made before
the rule existed): nothing allowed, and the server says how to fix it.

boto3 signs with the wall clock (no simulated time here).
"""

from __future__ import annotations

import json
import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from helpers.sv_server import READY_LINE, SNOWVAULT, ServerProcess, new_server

ROLE = "arn:aws:iam::123456789012:role/backup"
FINAL = ("COMPLETED", "FAILED", "ABORTED", "EXPIRED", "PARTIAL")


def _ext(server: ServerProcess, action: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The extension API's answer, whatever its status."""
    resp = server.signed(
        "POST",
        f"/_snowvault/v1/{action}",
        json.dumps(body).encode(),
        **{"Content-Type": "application/json"},
    )
    return resp.status, json.loads(resp.data or b"{}")


def _register(server: ServerProcess, name: str, source: Any) -> tuple[int, dict[str, Any]]:
    body = {"ResourceType": "Directory", "Name": name, "Source": source}
    return _ext(server, "RegisterResource", body)


def _refused_source(server: ServerProcess, source: str) -> str:
    status, doc = _register(server, "refused", source)
    assert (status, doc.get("__type")) == (403, "AccessDeniedException"), (source, doc)
    assert doc["message"].startswith(f"host path {source!r} is refused: ")
    return str(doc["message"])


def _names(server: ServerProcess) -> set[str]:
    status, doc = _ext(server, "ListResources", {})
    assert status == 200, doc
    return {r["Name"] for r in doc["Resources"]}


def _wait(fetch: Any, key: str) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while True:
        doc: dict[str, Any] = fetch()
        if doc[key] in FINAL or time.monotonic() > deadline:
            return doc
        time.sleep(0.2)


def _error(call: Any, **kwargs: Any) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    err = info.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Message"]


def test_register_refuses_what_the_rule_refuses(
    snowvault_server: ServerProcess, tmp_path: Path
) -> None:
    server = snowvault_server
    data = server.data_dir
    allowed = data.parent.parent  # the pytest tmp root, allowed by the fixture's init
    link = tmp_path / "link-into-data"
    link.symlink_to(data / "storage", target_is_directory=True)
    escape = str(tmp_path) + "/.." * len(tmp_path.parts) + "/etc"

    outside = f"is not under an allowed path (allowed: {allowed};"
    expected = {
        "/": "it contains the snowvault data directory or a vault storage location",
        "/root": f"it {outside}",
        "/etc": f"it {outside}",
        str(data): "it is inside the snowvault data directory",
        str(data / "root.key"): "it is inside the snowvault data directory",
        str(data.parent): "it contains the snowvault data directory",
        str(link): f"it resolves to {str(data / 'storage')!r}, which is inside the snowvault",
        escape: f"it resolves to '/etc', which {outside}",
    }
    for source, reason in expected.items():
        assert reason in _refused_source(server, source), source
    assert "refused" not in _names(server)


@pytest.mark.parametrize(
    ("source", "detail"),
    # a NUL byte: refused by the JSON reader (SerializationException) before the rule sees it
    [("etc", "must be an absolute path"), ("/tmp/a\x00b", None), (7, None), ("", None)],
)
def test_malformed_sources_are_invalid_parameters(
    snowvault_server: ServerProcess, source: Any, detail: str | None
) -> None:
    status, doc = _register(snowvault_server, "malformed", source)
    assert status == 400, doc
    if detail is not None:
        assert doc["__type"] == "InvalidParameterValueException"
        assert detail in doc["message"]


def _point(server: ServerProcess, backup: Any, tmp_path: Path) -> tuple[str, bytes]:
    source = tmp_path / "src"
    source.mkdir()
    content = random.Random(8).randbytes(30_000)
    (source / "a.bin").write_bytes(content)
    status, doc = _register(server, "paths-src", str(source))
    assert status == 200, doc
    backup.create_backup_vault(BackupVaultName="paths")
    job = backup.start_backup_job(
        BackupVaultName="paths", ResourceArn=doc["ResourceArn"], IamRoleArn=ROLE
    )
    done = _wait(lambda: backup.describe_backup_job(BackupJobId=job["BackupJobId"]), "State")
    assert done["State"] == "COMPLETED", done
    return str(done["RecoveryPointArn"]), content


def _tree(root: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(root)), p.lstat().st_size) for p in root.rglob("*"))


def test_restore_targets_the_rule_refuses_create_no_job(
    snowvault_server: ServerProcess, backup: Any, tmp_path: Path
) -> None:
    server = snowvault_server
    rp, content = _point(server, backup, tmp_path)
    status, account = _ext(server, "CreateAccount", {"AccountName": "paths-tenant"})
    assert status == 200, account
    key = account["AccessKey"]
    tenant = server.client(key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    tenant.create_backup_vault(BackupVaultName="victim")
    storage = server.data_dir / "storage" / server.creds["region"]
    mine = server.creds["account_id"]
    [victim] = [p for p in storage.glob("*/victim*") if p.parent.name != mine]
    victim_before = _tree(victim)
    link = tmp_path / "link"
    link.symlink_to(storage, target_is_directory=True)
    jobs_before = backup.list_restore_jobs()["RestoreJobs"]

    targets = {
        "/etc": "is not under an allowed path",
        "/": "contains the snowvault data directory",
        str(server.data_dir): "is inside the snowvault data directory",
        str(server.data_dir.parent): "contains the snowvault data directory",
        str(victim): "is inside the snowvault data directory or a vault storage location",
        str(link / victim.parent.name / victim.name): "is inside the snowvault data directory",
        str(tmp_path / ".." / ".." / ".." / ".." / "etc" / "x"): "is not under an allowed path",
    }
    for target, reason in targets.items():
        code, status, message = _error(
            backup.start_restore_job,
            RecoveryPointArn=rp,
            IamRoleArn=ROLE,
            Metadata={"targetPath": target, "overwrite": "true"},
        )
        assert (code, status) == ("AccessDeniedException", 403), (target, message)
        assert reason in message and "is refused" in message, (target, message)

    assert backup.list_restore_jobs()["RestoreJobs"] == jobs_before
    assert _tree(victim) == victim_before

    here = tmp_path / "restore-here"
    here.mkdir()
    job = backup.start_restore_job(
        RecoveryPointArn=rp, IamRoleArn=ROLE, Metadata={"targetPath": str(here)}
    )
    done = _wait(lambda: backup.describe_restore_job(RestoreJobId=job["RestoreJobId"]), "Status")
    assert done["Status"] == "COMPLETED", done
    assert [p.read_bytes() for p in here.rglob("a.bin")] == [content]


# ------------------------------------------------ init's default rule, and old data dirs


@pytest.fixture(scope="module")
def default_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server inited without --allow-path, as `make run` does (HOME is a tmp dir)."""
    server = new_server(tmp_path_factory)
    server.init(allow_paths=(), lease_seconds=10, sweep_seconds=1, poll_seconds=0.2)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_the_default_rule_is_home_except_its_hidden_entries(
    default_server: ServerProcess, tmp_path: Path
) -> None:
    server, home = default_server, default_server.home
    config = json.loads((server.data_dir / "config.json").read_text())
    assert (config["allowed_paths"], config["denied_paths"]) == ([str(home)], [f"{home}/.*"])
    assert (server.creds["allowed_paths"], server.creds["denied_paths"]) == (
        [str(home)],
        [f"{home}/.*"],
    )
    (home / "photos").mkdir()
    (home / ".ssh").mkdir()
    status, doc = _register(server, "photos", str(home / "photos"))
    assert status == 200, doc
    assert "under the denied path" in _refused_source(server, str(home / ".ssh"))
    assert "under the denied path" in _refused_source(server, str(home / ".config"))
    assert "contains the denied path" in _refused_source(server, str(home))
    assert "not under an allowed path" in _refused_source(server, str(tmp_path))


def test_quickstart_works_out_of_the_box_under_the_default_rule(
    default_server: ServerProcess,
) -> None:
    done = subprocess.run(
        [SNOWVAULT, "quickstart", "--json"],
        env=default_server.env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["SampleDirectory"] == str(default_server.home / "snowvault-quickstart")
    assert out["State"] == "COMPLETED"


def test_init_and_run_print_the_rule(tmp_path_factory: pytest.TempPathFactory) -> None:
    server = new_server(tmp_path_factory)
    done = subprocess.run(
        [
            *(SNOWVAULT, "init", "--data-dir", str(server.data_dir), "--no-profile"),
            *("--allow-path", "/srv/a", "--allow-path", "/srv/b", "--deny-path", "/srv/a/*/.git"),
        ],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "host paths allowed: /srv/a, /srv/b (except /srv/a/*/.git)" in done.stdout
    config = json.loads((server.data_dir / "config.json").read_text())
    assert config["allowed_paths"] == ["/srv/a", "/srv/b"]
    assert config["denied_paths"] == ["/srv/a/*/.git"]

    fresh = new_server(tmp_path_factory)
    with (fresh.home / "run.log").open("wb") as log:
        proc = subprocess.Popen(
            [SNOWVAULT, "run", "--data-dir", str(fresh.data_dir), "--port", str(fresh.port)],
            env=fresh.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while READY_LINE not in (text := (fresh.home / "run.log").read_text()):
            assert proc.poll() is None and time.monotonic() < deadline, text
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    home = fresh.home
    assert f"host paths allowed: {home} (except {home}/.*)" in text


def test_a_config_without_the_keys_allows_nothing_and_says_how_to_fix_it(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    server = new_server(tmp_path_factory)
    server.init(allow_paths=())
    path = server.data_dir / "config.json"
    config = json.loads(path.read_text())
    del config["allowed_paths"], config["denied_paths"]
    path.write_text(json.dumps(config))
    (server.home / "photos").mkdir()
    server.start()
    try:
        log = server.log.read_text()
        assert "warning: no host paths are allowed (allowed_paths is empty or missing" in log
        assert '"allowed_paths": [' in log
        reason = _refused_source(server, str(server.home / "photos"))
        assert "not under an allowed path (allowed: none;" in reason
        quick = subprocess.run(
            [SNOWVAULT, "quickstart"], env=server.env, capture_output=True, text=True, timeout=120
        )
        assert quick.returncode == 6, quick.stderr  # PermissionDenied's exit code
        assert "the server may not read" in quick.stderr and "allowed_paths" in quick.stderr
        assert "Traceback" not in quick.stderr
    finally:
        server.stop()
