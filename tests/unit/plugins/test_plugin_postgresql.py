"""The PostgreSQL plugin's own rules without a server: DSNs and their secrets, what
registration and StartRestoreJob refuse (from the attacker's side: hosts outside the
allowed networks, paths outside the rule, passwords that would be shown), the tar
watcher, and unpacking a base backup from a MemorySource."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from snowvault.control.model import host_paths
from snowvault.core.errors import InvalidInput, SnowvaultError
from snowvault.plugins import postgresql
from snowvault.plugins.base import BackupRequest, Progress, Resource
from snowvault.plugins.errors import InvalidRestoreTarget, NetworkRefused, PathRefused
from snowvault.plugins.postgresql import PostgreSQL, parse_dsn
from snowvault.testing.plugins import MemorySink, MemorySource

SECRET = "s3cr3t-pw"


@pytest.fixture
def host_dir() -> Iterator[Path]:
    """A directory the postgres user may enter (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="sv-pgunit-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def policy(tmp_path: Path, host_dir: Path) -> host_paths.Policy:
    return host_paths.Policy.build([str(tmp_path), str(host_dir)], [], [], os.path.realpath)


def test_a_dsn_is_stored_without_its_password_which_becomes_a_secret(
    policy: host_paths.Policy,
) -> None:
    reg = PostgreSQL().check_source(f"postgresql://backup:{SECRET}@127.0.0.1:6543", policy, {})
    assert reg.source == "postgresql://backup@127.0.0.1:6543"
    assert reg.secrets == {"password": SECRET}
    assert reg.properties == {}
    reg = PostgreSQL().check_source(
        "postgres://backup@localhost", policy, {"password": SECRET, "sslmode": "require"}
    )
    assert (reg.source, reg.secrets) == ("postgresql://backup@localhost:5432", {"password": SECRET})
    assert reg.properties == {"sslmode": "require"}


def test_dsn_forms() -> None:
    assert parse_dsn("postgresql://a%40b:p%2Fw@[::1]:5999") == postgresql.Dsn(
        "a@b", "::1", 5999, "p/w"
    )
    assert parse_dsn("postgresql://a%40b@[::1]:5999").source == "postgresql://a%40b@[::1]:5999"
    assert parse_dsn("postgresql://u@h/").port == 5432
    assert parse_dsn("postgresql://u@h:1/my%20db").source == "postgresql://u@h:1/my%20db"
    assert parse_dsn("postgresql://u@h:1/my%20db").dbname == "my db"


@pytest.mark.parametrize(
    "dsn",
    [
        "",
        "\x00",
        "../../etc",
        "mysql://u:s3cr3t-pw@127.0.0.1:1",
        "postgresql://:s3cr3t-pw@127.0.0.1:5432",
        "postgresql://u:s3cr3t-pw@127.0.0.1:99999",
        "postgresql://u:s3cr3t-pw@127.0.0.1:5432/app/db",
        "postgresql://u:s3cr3t-pw@127.0.0.1:5432?host=10.0.0.1",
    ],
)
def test_bad_dsns_are_refused_without_echoing_the_password(
    dsn: str, policy: host_paths.Policy
) -> None:
    with pytest.raises(InvalidInput) as caught:
        PostgreSQL().check_source(dsn, policy, {})
    assert SECRET not in str(caught.value)
    assert "\n" not in str(caught.value)


def test_registration_refuses_hosts_outside_the_allowed_networks(
    policy: host_paths.Policy,
) -> None:
    with pytest.raises(NetworkRefused, match="not in an allowed network") as caught:
        PostgreSQL().check_source(f"postgresql://u:{SECRET}@10.1.2.3:5432", policy, {})
    assert SECRET not in str(caught.value)
    wide = host_paths.Policy.build([], [], [], os.path.realpath, ["10.0.0.0/8"])
    assert PostgreSQL().check_source("postgresql://u@10.1.2.3", wide, {}).source == (
        "postgresql://u@10.1.2.3:5432"
    )


def test_registration_refuses_bad_properties(policy: host_paths.Policy, tmp_path: Path) -> None:
    pg = PostgreSQL()
    source = "postgresql://u:one@127.0.0.1:5432"
    with pytest.raises(InvalidInput, match="two different passwords"):
        pg.check_source(source, policy, {"password": "two"})
    with pytest.raises(InvalidInput, match="unknown PostgreSQL properties"):
        pg.check_source(source, policy, {"options": "-c x=y"})
    with pytest.raises(InvalidInput, match="sslmode"):
        pg.check_source(source, policy, {"sslmode": "maybe"})
    with pytest.raises(PathRefused):
        pg.check_source(source, policy, {"passfile": "/etc/shadow"})
    passfile = tmp_path / "pgpass"
    passfile.write_text("*:*:*:u:pw\n")
    reg = pg.check_source(source, policy, {"passfile": str(passfile)})
    assert reg.properties == {"passfile": str(passfile)}


def test_restore_metadata_refusals(policy: host_paths.Policy, host_dir: Path) -> None:
    pg = PostgreSQL()
    tmp_path = host_dir
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    dsn = "postgresql://postgres@127.0.0.1:5432"
    refused = [
        ({}, InvalidRestoreTarget),
        ({"targetDirectory": str(tmp_path / "a"), "targetDsn": dsn}, InvalidRestoreTarget),
        ({"targetDirectory": "/etc/pg"}, PathRefused),
        ({"targetDirectory": "relative"}, InvalidInput),
        ({"targetDirectory": str(tmp_path / "full")}, InvalidRestoreTarget),
        ({"targetDirectory": str(tmp_path / "a"), "databases": "x"}, InvalidRestoreTarget),
        ({"targetDsn": "postgresql://postgres@10.9.9.9:5432"}, NetworkRefused),
        ({"targetDsn": dsn, "databases": "a,b", "renameTo": "c"}, InvalidRestoreTarget),
        ({"targetDsn": dsn, "renameTo": "c"}, InvalidRestoreTarget),
        ({"targetDsn": dsn, "databases": "[1]"}, InvalidRestoreTarget),
        ({"targetDsn": dsn, "targetPassfile": "/etc/passwd"}, PathRefused),
        ({"targetDsn": dsn + "/shop"}, InvalidInput),
    ]
    for metadata, error in refused:
        with pytest.raises(error):
            pg.check_restore(metadata, policy)
    with pytest.raises(InvalidRestoreTarget, match="must not hold a password") as caught:
        pg.check_restore({"targetDsn": f"postgresql://postgres:{SECRET}@127.0.0.1"}, policy)
    assert SECRET not in str(caught.value)
    pg.check_restore({"targetDirectory": str(tmp_path / "new")}, policy)
    pg.check_restore({"targetDsn": dsn, "databases": '["shop"]', "renameTo": "shop2"}, policy)


def test_a_directory_the_server_user_cannot_enter_is_refused_at_the_call(
    policy: host_paths.Policy, host_dir: Path
) -> None:
    private = host_dir / "private"
    private.mkdir(mode=0o700)
    user = postgresql.pg_tools.server_user()
    if user.uid is not None:  # as root: postgres cannot enter a root-owned 0700 directory
        with pytest.raises(InvalidRestoreTarget, match=f"the {user.name} user cannot enter"):
            PostgreSQL().check_restore({"targetDirectory": str(private / "a" / "db")}, policy)
    os.chmod(private, 0o755)
    PostgreSQL().check_restore({"targetDirectory": str(private / "a" / "db")}, policy)


def test_all_databases_means_all_but_the_maintenance_database() -> None:
    info = {"databases": [{"name": "postgres"}, {"name": "shop"}, {"name": "crm"}]}
    assert postgresql.chosen_databases([], info) == ["shop", "crm"]
    assert postgresql.chosen_databases(["postgres"], info) == ["postgres"]
    with pytest.raises(InvalidRestoreTarget, match=r"\['nope'\] not in the backup"):
        postgresql.chosen_databases(["nope"], info)


def test_restored_source_names_the_directory_or_the_database() -> None:
    pg = PostgreSQL()
    assert pg.restored_source({"targetDirectory": "/srv/pg//restored/"}) == "/srv/pg/restored"
    dsn = "postgresql://postgres@127.0.0.1:5432"
    assert pg.restored_source({"targetDsn": dsn, "databases": "a", "renameTo": "b"}) == (
        "postgresql://127.0.0.1:5432/b"
    )
    assert pg.restored_source({"targetDsn": dsn, "databases": "a,c"}) == (
        "postgresql://127.0.0.1:5432"
    )
    assert pg.restored_source({}) is None
    keys = {k.name for k in pg.restore_keys}
    assert set(pg.restore_defaults(None)) <= keys


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_server_fails_the_backup_in_one_line(policy: host_paths.Policy) -> None:
    source = f"postgresql://backup@127.0.0.1:{_free_port()}"
    resource = Resource("arn:x", "PostgreSQL", "db", source, {}, {"password": SECRET})
    sink = MemorySink()
    with pytest.raises(SnowvaultError) as caught:
        PostgreSQL().backup(BackupRequest(resource, policy, sink, lambda p: None))
    message = str(caught.value)
    assert "\n" not in message and SECRET not in message
    assert "Connection refused" in message and source in message
    assert sink.kind is None  # nothing was written
    assert "Error" in PostgreSQL().describe(resource, policy)


def test_the_worker_checks_the_network_rule_again(tmp_path: Path) -> None:
    """A host allowed at registration and refused by the rule when the job runs."""
    resource = Resource("arn:x", "PostgreSQL", "db", "postgresql://u@10.1.2.3:5432")
    policy = host_paths.Policy.build([str(tmp_path)], [], [], os.path.realpath)
    with pytest.raises(NetworkRefused):
        PostgreSQL().backup(BackupRequest(resource, policy, MemorySink(), lambda p: None))


def _tar(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o600
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


LABEL = (
    b"START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"
    b"CHECKPOINT LOCATION: 0/2000060\nSTART TIMELINE: 1\n"
)


def test_the_tar_tap_sees_members_and_keeps_the_label_without_changing_the_stream() -> None:
    data = _tar({"backup_label": LABEL, "base/1/1": b"x" * 3000, "backup_manifest": b"{}"})
    tap = postgresql.TarTap(io.BytesIO(data))  # type: ignore[arg-type]
    assert tap.peek_until("backup_label")
    assert postgresql.parse_label(tap.kept["backup_label"].decode())["start_lsn"] == "0/2000028"
    assert io.BufferedReader(tap).read() == data
    assert tap.names == ["backup_label", "base/1/1", "backup_manifest"]
    assert tap.kept["backup_manifest"] == b"{}" and tap.ended


def test_settings_that_may_hold_secrets_stay_out_of_the_facts() -> None:
    names = ("primary_conninfo", "restore_command", "shared_buffers", "port")
    assert [n for n in names if not postgresql._may_hold_a_secret(n)] == ["shared_buffers", "port"]


def test_a_configuration_kept_outside_is_written_without_the_sources_paths() -> None:
    text = (
        "data_directory = '/var/lib/postgresql/15/main'\nhba_file='/etc/x'\n"
        "port = 5433\ninclude_dir 'conf.d'\n"
    )
    out = postgresql._sanitise_conf(text)
    assert "\nport = 5433\n" in out
    assert "#snowvault: data_directory" in out and "#snowvault: include_dir" in out
    assert "#snowvault: hba_file='/etc/x'" in out


def _point(members: dict[str, bytes], **files: bytes) -> MemorySource:
    info = {"bootstrap_superuser": "postgres", "settings": {"port": "5433", "hba_file": "/x"}}
    stop = json.dumps({"start_lsn": "0/2000028", "stop_lsn": "0/2000100", "timeline": "1"})
    return MemorySource(
        {"base.tar": _tar(members), "backup_info.json": stop.encode(), **files}, notes=info
    )


def test_restore_base_unpacks_and_writes_what_start_needs(tmp_path: Path) -> None:
    source = _point(
        {
            "backup_label": LABEL,
            "PG_VERSION": b"15\n",
            "postmaster.pid": b"1",
            "standby.signal": b"",
        },
        **{"config/pg_hba.conf": b"local all all trust\n"},
    )
    target = tmp_path / "restored"
    target.mkdir()
    seen: list[Progress] = []
    facts = postgresql.restore_base(source, str(target), seen.append)
    assert facts["stop_lsn"] == "0/2000100" and facts["start_lsn"] == "0/2000028"
    assert sorted(facts["written"]) == ["pg_hba.conf", "pg_ident.conf", "postgresql.conf"]
    assert not (target / "postmaster.pid").exists() and not (target / "standby.signal").exists()
    assert (target / "pg_hba.conf").read_text() == "local all all trust\n"
    conf = (target / "postgresql.conf").read_text()
    assert "port = '5433'" in conf and "hba_file" not in conf
    assert os.stat(target).st_mode & 0o777 == 0o700
    size = len(source.files["base.tar"])
    assert seen and len(LABEL) < seen[-1].bytes_done <= size == seen[-1].bytes_total


def test_restore_base_refuses_members_that_leave_the_directory(tmp_path: Path) -> None:
    target = tmp_path / "restored"
    target.mkdir()
    with pytest.raises(SnowvaultError, match="cannot be unpacked"):
        postgresql.restore_base(_point({"../escaped": b"x"}), str(target))
    assert not (tmp_path / "escaped").exists()


def test_instances_on_backed_up_data_run_as_nobody_not_as_the_postgres_owner(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Backed-up data may carry code a started server runs: the account that runs it must
    not own this host's own clusters (postgres), whatever SNOWVAULT_PG_USER says."""
    from snowvault.plugins import pg_tools
    from snowvault.plugins.postgresql import UNSAFE_ON_RESTORE

    monkeypatch.delenv("SNOWVAULT_PG_SANDBOX_USER", raising=False)
    monkeypatch.setenv("SNOWVAULT_PG_USER", "postgres")
    assert pg_tools.sandbox_user().name == "nobody"
    assert pg_tools.server_user().name == "postgres"  # the owner of a restored directory
    for setting in ("shared_preload_libraries", "jit_provider", "dynamic_library_path"):
        assert setting in UNSAFE_ON_RESTORE
