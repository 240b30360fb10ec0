"""The MySQL plugin: its DSN and Metadata rules (no server), then backup and restore
against the MariaDB at 127.0.0.1:3306 (root, no password; CI starts it) through
MemorySink and MemorySource: one entry per database, restore by name and under a new
name, refusals, one-line failures without the password, and no password on any
command line. Each test uses databases and a user named after its process, so tests
on other workers never meet them."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from snowvault.control.model import host_paths
from snowvault.core.errors import InvalidInput, NotFound, PermissionDenied, Unavailable
from snowvault.plugins import child, mysql
from snowvault.plugins.base import BackupRequest, Resource, RestoreRequest
from snowvault.plugins.errors import InvalidRestoreTarget
from snowvault.testing.plugins import MemorySink, MemorySource

PLUGIN = mysql.MySQL()
POLICY = host_paths.Policy()  # loopback only
SERVER = "mysql://root@127.0.0.1:3306"
_ids = itertools.count()


def sql(statement: str) -> str:
    done = subprocess.run(
        ["mariadb", "-h127.0.0.1", "-P3306", "-uroot", "-N", "-B", "-e", statement],
        capture_output=True,
        check=True,
        timeout=30,
    )
    return done.stdout.decode()


@pytest.fixture
def names() -> Iterator[list[str]]:
    """Fresh database names for this test, dropped afterwards (with their copies)."""
    made = [f"svu_{os.getpid()}_{next(_ids)}" for _ in range(3)]
    yield made
    sql("; ".join(f"DROP DATABASE IF EXISTS `{n}`; DROP DATABASE IF EXISTS `{n}_r`" for n in made))


def _shop(name: str) -> None:
    sql(
        f"CREATE DATABASE `{name}` CHARACTER SET latin1 COLLATE latin1_swedish_ci;"
        f" CREATE TABLE `{name}`.items (id INT PRIMARY KEY, body TEXT, blob_ LONGBLOB);"
        f" INSERT INTO `{name}`.items VALUES (1, 'a\\ttab', x'00ff'), (2, 'b', NULL);"
        f" CREATE VIEW `{name}`.v AS SELECT id FROM `{name}`.items;"
        f" CREATE PROCEDURE `{name}`.p() SELECT 1"
    )


def _resource(names: list[str], **secrets: str) -> Resource:
    props = {"databases": ",".join(names)}
    reg = PLUGIN.check_source(SERVER, POLICY, props)
    return Resource("arn:x", "MySQL", "m", reg.source, reg.properties, dict(secrets))


def _backup(resource: Resource) -> MemorySink:
    sink = MemorySink()
    PLUGIN.backup(BackupRequest(resource, POLICY, sink, lambda p: None))
    return sink


def _restore(resource: Resource, sink: MemorySink, metadata: dict[str, str]) -> str | None:
    request = RestoreRequest(resource, metadata, POLICY, MemorySource.of(sink), lambda p: None)
    PLUGIN.check_restore(metadata, POLICY)
    PLUGIN.restore(request)
    return PLUGIN.validate_restore(request)


def test_registration_splits_the_password_off_and_shows_a_clean_dsn() -> None:
    reg = PLUGIN.check_source("mysql://app:p%40ss@127.0.0.1:3307/", POLICY, {})
    assert (reg.source, dict(reg.secrets)) == ("mysql://app@127.0.0.1:3307", {"password": "p@ss"})
    reg = PLUGIN.check_source("mariadb://app@localhost", POLICY, {"password": "x", "users": "true"})
    assert (reg.source, dict(reg.properties), dict(reg.secrets)) == (
        "mysql://app@localhost:3306",
        {"users": "true"},
        {"password": "x"},
    )
    reg = PLUGIN.check_source(SERVER, POLICY, {"databases": '["a", "b,c"]'})
    assert mysql.parse_names(reg.properties["databases"]) == ["a", "b,c"]


@pytest.mark.parametrize(
    "source",
    [
        "",
        "\x00",
        "../../etc",
        "postgresql://root@127.0.0.1",
        "mysql://127.0.0.1:3306",
        "mysql://root@127.0.0.1:3306/shop",
        "mysql://root@127.0.0.1:99999",
        "mysql://root@127.0.0.1?ssl=1",
    ],
)
def test_malformed_sources_are_refused(source: str) -> None:
    with pytest.raises(InvalidInput):
        PLUGIN.check_source(source, POLICY, {})


def test_hosts_outside_the_allowed_networks_are_refused_at_registration_and_restore() -> None:
    with pytest.raises(PermissionDenied, match="allowed_networks"):
        PLUGIN.check_source("mysql://root:pw@10.9.9.9", POLICY, {})
    with pytest.raises(PermissionDenied, match="allowed_networks"):
        PLUGIN.check_restore({"targetDsn": "mysql://root@10.9.9.9"}, POLICY)
    with pytest.raises(InvalidInput, match="unknown"):
        PLUGIN.check_source(SERVER, POLICY, {"sslmode": "x"})


@pytest.mark.parametrize(
    ("metadata", "says"),
    [
        ({}, "targetDsn is required"),
        ({"targetDsn": "mysql://root:pw@127.0.0.1"}, "must not hold a password"),
        ({"targetDsn": SERVER, "renameTo": "x"}, "exactly one database"),
        ({"targetDsn": SERVER, "databases": "a,b", "renameTo": "x"}, "exactly one database"),
        ({"targetDsn": SERVER, "databases": "[1]"}, "list of names"),
        ({"targetDsn": SERVER, "databases": "a", "renameTo": "x" * 65}, "not a valid"),
    ],
)
def test_bad_restore_metadata_is_refused(metadata: dict[str, str], says: str) -> None:
    with pytest.raises(InvalidRestoreTarget, match=says):
        PLUGIN.check_restore(metadata, POLICY)


def test_each_database_is_one_entry_with_its_facts_noted(names: list[str]) -> None:
    _shop(names[0])
    sql(f"CREATE DATABASE `{names[1]}`")
    sink = _backup(_resource(names[:2]))
    assert sink.kind == "entries"
    assert sorted(sink.files) == sorted(mysql.entry_path(n) for n in names[:2])
    assert sink.meta[mysql.entry_path(names[0])] == {"database": names[0]}
    facts = sink.info["databases"][names[0]]
    assert facts == {
        "charset": "latin1",
        "collation": "latin1_swedish_ci",
        "tables": ["items", "v"],
    }
    assert "MariaDB" in sink.info["server_version"] or sink.info["server_version"][0].isdigit()
    dump = sink.files[mysql.entry_path(names[0])]
    assert b"CREATE TABLE `items`" in dump and b"CREATE DATABASE" not in dump
    assert b"PROCEDURE" in dump and b"Dump completed on" not in dump  # no date: dedup


def test_restore_under_a_new_name_gives_the_rows_back_and_refuses_an_existing_one(
    names: list[str],
) -> None:
    _shop(names[0])
    resource = _resource(names[:1])
    sink = _backup(resource)
    target = f"{names[0]}_r"
    metadata = {"targetDsn": SERVER, "databases": names[0], "renameTo": target}
    assert _restore(resource, sink, metadata) is None
    query = "SELECT id, body, HEX(blob_) FROM `{}`.items ORDER BY id"
    assert sql(query.format(target)) == sql(query.format(names[0]))
    assert sql(f"SELECT DEFAULT_COLLATION_NAME FROM information_schema.schemata "
               f"WHERE schema_name = '{target}'").strip() == "latin1_swedish_ci"  # fmt: skip
    with pytest.raises(InvalidRestoreTarget, match="exists on the target"):
        _restore(resource, sink, metadata)
    with pytest.raises(InvalidRestoreTarget, match="not in the recovery point"):
        _restore(resource, sink, {"targetDsn": SERVER, "databases": "nope"})


def test_restore_defaults_put_every_database_back_after_it_was_dropped(names: list[str]) -> None:
    _shop(names[0])
    sql(f"CREATE DATABASE `{names[1]}`; CREATE TABLE `{names[1]}`.t (a INT)")
    resource = _resource(names[:2])
    sink = _backup(resource)
    sql(f"DROP DATABASE `{names[0]}`; DROP DATABASE `{names[1]}`")
    assert _restore(resource, sink, PLUGIN.restore_defaults(resource)) is None
    assert sql(f"SELECT COUNT(*) FROM `{names[0]}`.items").strip() == "2"
    assert sql(f"SHOW TABLES FROM `{names[1]}`").split() == ["t"]


def test_the_check_after_restore_names_a_missing_table(names: list[str]) -> None:
    _shop(names[0])
    resource = _resource(names[:1])
    sink = _backup(resource)
    path = mysql.entry_path(names[0])
    sink.files[path] = sink.files[path].replace(b"CREATE TABLE `items`", b"CREATE TABLE `other`")
    sink.files[path] = sink.files[path].replace(b"INSERT INTO `items`", b"INSERT INTO `other`")
    sink.files[path] = sink.files[path].replace(b"`items`", b"`other`")
    metadata = {"targetDsn": SERVER, "databases": names[0], "renameTo": f"{names[0]}_r"}
    problem = _restore(resource, sink, metadata)
    assert problem == f"database '{names[0]}_r' lacks 1 tables: items"


def test_a_failing_restore_drops_the_database_it_created(names: list[str]) -> None:
    _shop(names[0])
    resource = _resource(names[:1])
    sink = _backup(resource)
    sink.files[mysql.entry_path(names[0])] += b"\nTHIS IS NOT SQL;\n"
    metadata = {"targetDsn": SERVER, "databases": names[0], "renameTo": f"{names[0]}_r"}
    with pytest.raises(Unavailable) as err:
        _restore(resource, sink, metadata)
    assert "ERROR 1064" in str(err.value) and "\n" not in str(err.value)
    assert sql(f"SHOW DATABASES LIKE '{names[0]}_r'") == ""


@pytest.fixture
def user(names: list[str]) -> Iterator[tuple[str, str]]:
    """A user with a password and rights on the test's databases only."""
    name, password = f"svu_{os.getpid()}_{next(_ids)}", "S3cret-'quote\"back\\slash"
    quoted = password.replace("\\", "\\\\").replace("'", "\\'")
    sql(
        f"CREATE USER '{name}'@'127.0.0.1' IDENTIFIED BY '{quoted}';"
        f" GRANT ALL ON `svu\\_%`.* TO '{name}'@'127.0.0.1';"
        f" GRANT SELECT ON mysql.proc TO '{name}'@'127.0.0.1';"  # other definers' routines
        f" GRANT SET USER ON *.* TO '{name}'@'127.0.0.1'"  # ... and restoring them
    )
    yield name, password
    sql(f"DROP USER IF EXISTS '{name}'@'127.0.0.1'")


def test_a_password_reaches_the_clients_only_through_a_private_file(
    names: list[str], user: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    name, password = user
    _shop(names[0])
    seen: list[Any] = []
    real_popen = subprocess.Popen

    def spy(argv: Any, *args: Any, **kwargs: Any) -> Any:
        defaults = [a for a in argv if a.startswith("--defaults-file=")]
        mode = os.stat(defaults[0].split("=", 1)[1]).st_mode & 0o777 if defaults else None
        seen.append((list(argv), dict(kwargs.get("env") or {}), mode))
        return real_popen(argv, *args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", spy)
    reg = PLUGIN.check_source(
        f"mysql://{name}@127.0.0.1:3306", POLICY, {"password": password, "databases": names[0]}
    )
    assert dict(reg.secrets) == {"password": password} and password not in reg.source
    resource = Resource("arn:x", "MySQL", "m", reg.source, reg.properties, reg.secrets)
    sink = _backup(resource)
    metadata = {
        "targetDsn": f"mysql://{name}@127.0.0.1",
        "databases": names[0],
        "renameTo": f"{names[0]}_r",
    }
    assert _restore(resource, sink, metadata) is None
    assert len(seen) >= 4
    for argv, env, mode in seen:
        assert not any(password in a for a in argv)
        assert password not in env.values() and "MYSQL_PWD" not in env
        assert mode == 0o600


def test_wrong_password_and_unreachable_server_fail_in_one_line_without_the_secret(
    names: list[str], user: tuple[str, str]
) -> None:
    name, _ = user
    sql(f"CREATE DATABASE `{names[0]}`")
    wrong = "wr0ng-pass"
    reg = PLUGIN.check_source(f"mysql://{name}@127.0.0.1", POLICY, {"password": wrong})
    resource = Resource("arn:x", "MySQL", "m", reg.source, reg.properties, reg.secrets)
    with pytest.raises(Unavailable) as err:
        _backup(resource)
    assert "Access denied" in str(err.value)
    assert wrong not in str(err.value) and "\n" not in str(err.value)
    assert "Error" in PLUGIN.describe(resource, POLICY)
    gone = Resource("arn:x", "MySQL", "m", "mysql://root@127.0.0.1:1")
    with pytest.raises(Unavailable, match="Can't connect") as err:
        _backup(gone)
    assert "\n" not in str(err.value)
    missing = _resource([f"{names[0]}_nope"])
    with pytest.raises(NotFound, match="_nope"):
        _backup(missing)


def test_describe_lists_databases_with_sizes() -> None:
    found = PLUGIN.describe(Resource("arn:x", "MySQL", "m", SERVER), POLICY)
    assert found["ServerVersion"]
    assert all({"Name", "SizeInBytes", "Tables"} <= set(d) for d in found["Databases"])
    assert not {d["Name"] for d in found["Databases"]} & mysql.SYSTEM_SCHEMAS


def test_of_several_allowed_addresses_the_one_that_answers_is_used() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.3", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert child.answering(["127.0.0.2", "127.0.0.3"], port) == "127.0.0.3"
    assert child.answering(["127.0.0.2", "127.0.0.3"], port) == "127.0.0.2"  # none: the first


def test_a_database_named_like_an_option_is_dumped_as_a_name(names: list[str]) -> None:
    odd = f"--defaults-file=x{names[0]}"  # an attacker with CREATE picks the name
    sql(
        f"CREATE DATABASE `{odd}`; CREATE TABLE `{odd}`.t (a INT); INSERT INTO `{odd}`.t VALUES (5)"
    )
    try:
        resource = _resource([odd])
        sink = _backup(resource)
        assert list(sink.files) == [mysql.entry_path(odd)]
        assert mysql.entry_path(odd).startswith("databases/--defaults-file%3D")
        metadata = {"targetDsn": SERVER, "databases": odd, "renameTo": f"{names[0]}_r"}
        assert _restore(resource, sink, metadata) is None
        assert sql(f"SELECT a FROM `{names[0]}_r`.t").split() == ["5"]
    finally:
        sql(f"DROP DATABASE IF EXISTS `{odd}`")


def test_users_and_grants_are_an_entry_of_their_own_when_asked(names: list[str]) -> None:
    sql(f"CREATE DATABASE `{names[0]}`")
    reg = PLUGIN.check_source(SERVER, POLICY, {"databases": names[0], "users": "true"})
    sink = _backup(Resource("arn:x", "MySQL", "m", reg.source, reg.properties, {}))
    assert sorted(sink.files) == sorted([mysql.entry_path(names[0]), mysql.USERS_ENTRY])
    assert b"CREATE USER `root`@" in sink.files[mysql.USERS_ENTRY]
    assert sink.info["users"] is True
    with pytest.raises(InvalidInput, match="users"):
        PLUGIN.check_source(SERVER, POLICY, {"users": "yes"})


def _script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "client.sh"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o700)
    return [str(path)]


def test_a_client_that_fails_mid_stream_fails_in_one_scrubbed_line(tmp_path: Path) -> None:
    argv = _script(
        tmp_path,
        "printf 'CREATE'\necho 'Warning: x' >&2\necho 'ERROR 2013: lost pw1' >&2\nexit 2\n",
    )
    reading = child.reading(argv, {}, "dump", skip=["Warning:"], secrets=["pw1"])
    with pytest.raises(Unavailable) as err, reading as out:
        assert out.read() == b"CREATE"
    assert str(err.value) == "unavailable: dump: ERROR 2013: lost ***"


def test_a_client_whose_reader_gives_up_is_killed(tmp_path: Path) -> None:
    argv = _script(tmp_path, f"echo $$ > {tmp_path}/pid\nexec yes\n")
    with pytest.raises(RuntimeError), child.reading(argv, {}, "dump") as out:
        out.read(10)
        raise RuntimeError("the sink failed")
    pid = int((tmp_path / "pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone, and reaped
    with pytest.raises(Unavailable, match="not installed"):
        child.run([str(tmp_path / "missing")], {}, "mysql")
