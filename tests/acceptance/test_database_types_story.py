"""An SQLite file, a MariaDB database and a Redis server protected end to end through the
real server: registered with ``snowvault resource add sqlite|mysql|redis`` (the Redis
password from stdin: sealed, never listed, described or logged), backed up and restored
with boto3 (a new SQLite file that passes integrity_check, the database under a new
name, every key in an empty Redis), with what DescribeResource discovers."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from helpers.redis_server import RedisServer
from helpers.stories import backed_up, restored_with, sv_json
from helpers.sv_server import SNOWVAULT, ServerProcess

PASSWORD = "st0ry-redis-pass"


def _mysql(statement: str) -> str:
    argv = ["mariadb", "-h127.0.0.1", "-P3306", "-uroot", "-N", "-B", "-e", statement]
    return subprocess.run(argv, capture_output=True, check=True, timeout=30).stdout.decode()


def test_sqlite_and_mysql_round_trip_through_the_cli_and_boto3(
    snowvault_server: ServerProcess, backup: Any, tmp_path: Path
) -> None:
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.executemany("INSERT INTO notes (body) VALUES (?)", [("n",)] * 100)
    conn.close()
    app = sv_json(snowvault_server, "resource", "add", "sqlite", "--path", str(db), "--name", "app")
    name = f"sva_{os.getpid()}"
    _mysql(f"DROP DATABASE IF EXISTS {name}; DROP DATABASE IF EXISTS {name}_r")
    _mysql(
        f"CREATE DATABASE {name}; CREATE TABLE {name}.t (a INT); INSERT INTO {name}.t VALUES (1)"
    )
    try:
        shop = sv_json(
            snowvault_server, "resource", "add", "mysql", "--name", "shop",
            "--dsn", "mysql://root@127.0.0.1:3306", "--property", f"databases={name}",
        )  # fmt: skip
        found = sv_json(snowvault_server, "resource", "describe", "shop")["Discovery"]
        assert name in [d["Name"] for d in found["Databases"]] and found["ServerVersion"]

        backup.create_backup_vault(BackupVaultName="dbstory")
        for resource, metadata in (
            (app, {"targetPath": str(tmp_path / "restored.db")}),
            (shop, {"targetDsn": "mysql://root@127.0.0.1:3306", "renameTo": f"{name}_r",
                    "databases": name}),
        ):  # fmt: skip
            job = backed_up(backup, "dbstory", resource["ResourceArn"])
            assert job["State"] == "COMPLETED", job.get("StatusMessage")
            done = restored_with(backup, job["RecoveryPointArn"], metadata)
            assert done["Status"] == "COMPLETED", done.get("StatusMessage")
        check = sqlite3.connect(tmp_path / "restored.db")
        assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert check.execute("SELECT COUNT(*) FROM notes").fetchone() == (100,)
        check.close()
        assert _mysql(f"SELECT a FROM {name}_r.t").split() == ["1"]
    finally:
        _mysql(f"DROP DATABASE IF EXISTS {name}; DROP DATABASE IF EXISTS {name}_r")


def test_redis_with_a_password_from_stdin_round_trips_into_an_empty_server(
    snowvault_server: ServerProcess, backup: Any
) -> None:
    with RedisServer(password=PASSWORD) as source, RedisServer() as target:
        for i in range(20):
            source.cli("SET", f"k{i}", f"v{i}")
        added = subprocess.run(
            [SNOWVAULT, "resource", "add", "redis", "--name", "cache", "--url",
             f"redis://127.0.0.1:{source.port}", "--password-stdin", "--json"],
            input=PASSWORD + "\n", env=snowvault_server.env, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        arn = json.loads(added.stdout.strip().splitlines()[-1])["ResourceArn"]
        listed = sv_json(snowvault_server, "resource", "list")
        described = sv_json(snowvault_server, "resource", "describe", "cache")
        assert PASSWORD not in added.stdout + json.dumps(listed) + json.dumps(described)

        backup.create_backup_vault(BackupVaultName="redisstory")
        job = backed_up(backup, "redisstory", arn)
        assert job["State"] == "COMPLETED", job.get("StatusMessage")
        defaults = backup.get_recovery_point_restore_metadata(
            BackupVaultName="redisstory", RecoveryPointArn=job["RecoveryPointArn"]
        )["RestoreMetadata"]
        assert defaults == {"targetUrl": f"redis://127.0.0.1:{source.port}"}
        done = restored_with(backup, job["RecoveryPointArn"], {"targetUrl": target.url})
        assert done["Status"] == "COMPLETED", done.get("StatusMessage")
        assert target.cli("DBSIZE").strip() == "20" and target.cli("GET", "k7").strip() == "v7"
    assert PASSWORD not in snowvault_server.log.read_text(errors="replace")
