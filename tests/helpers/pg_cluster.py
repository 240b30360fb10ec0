"""A throwaway PostgreSQL cluster for tests: initdb in a temp dir, started on a free
loopback port as the unprivileged ``postgres`` user (PostgreSQL refuses root), fast
(fsync off, small buffers, 1 MB WAL segments), ready for base backups and WAL
streaming (wal_level=replica, wal senders and slots), stopped and removed at the end.

    with PgCluster() as pg:            # or PgCluster().init().start() ... .cleanup()
        pg.execute("CREATE TABLE t (id int)", db="postgres")
        pg.create_role("backup", "secret", replication=True)
        pg.dsn("backup", "secret")                 # postgresql://backup:secret@127.0.0.1:PORT
        pg.digest("postgres", "t")                 # md5 over the table's rows, in order

Administration goes over the cluster's Unix socket as ``postgres`` (trust); TCP on
127.0.0.1 asks for passwords (scram-sha-256), replication included, so a test sees
what a real server answers to a wrong password or a role without REPLICATION.
:meth:`PgCluster.adopt` starts an existing data directory (a restored one) the same way.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import psycopg

from snowvault.plugins import pg_tools

HBA = """local   all          all                        trust
host    replication  all        127.0.0.1/32    scram-sha-256
host    all          all        127.0.0.1/32    scram-sha-256
"""

SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "shared_buffers": "'16MB'",
    "max_connections": "30",
    "fsync": "off",
    "synchronous_commit": "off",
    "wal_level": "replica",
    "max_wal_senders": "8",
    "max_replication_slots": "8",
    "wal_keep_size": "'0'",
    "checkpoint_timeout": "'30min'",
    "logging_collector": "off",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _user_args() -> dict[str, Any]:
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam("postgres")
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def digest_of(conninfo: str, table: str) -> tuple[int, str]:
    """(row count, md5 of the rows in text form, ordered) of ``table``."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute(
            psycopg.sql.SQL(
                "SELECT count(*), md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), ''))"
                " FROM {} t"
            ).format(psycopg.sql.Identifier(table))
        ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


class PgCluster:
    """One cluster; ``settings`` add to (or override) :data:`SETTINGS`."""

    def __init__(
        self,
        settings: dict[str, str] | None = None,
        *,
        data_dir: str | None = None,
        config_outside: bool = False,
    ):
        """``config_outside``: postgresql.conf, pg_hba.conf and pg_ident.conf live in
        ``base/etc`` and the data directory holds none (Debian's layout; pg_ctl -D
        names the configuration directory, which names the data directory)."""
        self.base = tempfile.mkdtemp(prefix="sv-pgcluster-")
        os.chmod(self.base, 0o755)  # the postgres user walks into it
        self.data_dir = data_dir or os.path.join(self.base, "data")
        self.config_outside = config_outside
        self.config_dir = os.path.join(self.base, "etc") if config_outside else self.data_dir
        self.port = free_port()
        self.settings = SETTINGS | (settings or {})
        self.log = os.path.join(self.base, "server.log")
        self._user = _user_args()
        if self._user:
            os.chown(self.base, self._user["user"], self._user["group"])
        self.running = False

    # --- life cycle -----------------------------------------------------------------

    def init(self) -> PgCluster:
        self._run(
            pg_tools.binary("initdb"), "-D", self.data_dir, "-U", "postgres",
            "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
            "--locale=C", "--wal-segsize=1", "-N",
        )  # fmt: skip
        with open(os.path.join(self.data_dir, "postgresql.conf"), "a") as f:
            f.writelines(f"{k} = {v}\n" for k, v in self.settings.items())
        Path(self.data_dir, "pg_hba.conf").write_text(HBA)
        if self.config_outside:
            os.mkdir(self.config_dir, 0o755)
            for name in ("postgresql.conf", "pg_hba.conf", "pg_ident.conf"):
                shutil.move(os.path.join(self.data_dir, name), self.config_dir)
            with open(os.path.join(self.config_dir, "postgresql.conf"), "a") as f:
                f.write(f"data_directory = '{self.data_dir}'\n")
                f.write(f"hba_file = '{self.config_dir}/pg_hba.conf'\n")
                f.write(f"ident_file = '{self.config_dir}/pg_ident.conf'\n")
            if self._user:
                for name in os.listdir(self.config_dir):
                    path = os.path.join(self.config_dir, name)
                    os.chown(path, self._user["user"], self._user["group"])
        return self

    @classmethod
    def adopt(cls, data_dir: str) -> PgCluster:
        """A cluster over an existing data directory (owned by the server user), started
        with this helper's port and socket whatever its postgresql.conf says."""
        return cls(data_dir=data_dir)

    def start(self) -> PgCluster:
        """Start it; a failed start stops what may run and removes the temp dirs (the
        assertion carries the server log's tail)."""
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.base}"
        self.running = True  # a failed start may still leave a postmaster to stop
        try:
            self._run(
                pg_tools.binary("pg_ctl"), "-D", self.config_dir, "-l", self.log, "-w",
                "-t", "60", "-o", opts, "start",
            )  # fmt: skip
        except BaseException:
            self.cleanup()
            raise
        return self

    def stop(self) -> None:
        if not self.running:
            return
        for mode in ("fast", "immediate"):
            done = subprocess.run(
                [pg_tools.binary("pg_ctl"), "-D", self.config_dir, "-m", mode, "-w", "stop"],
                capture_output=True,
                cwd="/",
                check=False,
                **self._user,
            )
            if done.returncode == 0:
                break
        self.running = False

    def cleanup(self) -> None:
        """Stop and remove everything (the adopted data directory stays)."""
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PgCluster:
        if not os.path.exists(os.path.join(self.data_dir, "PG_VERSION")):
            try:
                self.init()
            except BaseException:
                self.cleanup()
                raise
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def _run(self, *cmd: str) -> None:
        done = subprocess.run(
            list(cmd), capture_output=True, text=True, cwd="/", check=False, **self._user
        )
        log = Path(self.log).read_text() if os.path.exists(self.log) else ""
        assert done.returncode == 0, f"{cmd[0]} failed: {done.stderr}\n{log[-2000:]}"

    # --- talking to it --------------------------------------------------------------

    def conninfo(self, db: str = "postgres", user: str = "postgres") -> str:
        """Over the Unix socket, trusted."""
        return f"host={self.base} port={self.port} dbname={db} user={user}"

    def connect(self, db: str = "postgres") -> psycopg.Connection[Any]:
        return psycopg.connect(self.conninfo(db), autocommit=True)

    def execute(self, sql: str, db: str = "postgres") -> list[tuple[Any, ...]]:
        """Run SQL as the superuser; the rows of the last statement (if it has any)."""
        with self.connect(db) as conn:
            cur = conn.execute(sql.encode())
            return list(cur.fetchall()) if cur.description else []

    def psql(self, sql: str, db: str = "postgres") -> str:
        """psql -At output of ``sql`` as the superuser."""
        done = subprocess.run(
            [pg_tools.binary("psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d",
             self.conninfo(db), "-c", sql],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    def create_role(self, name: str, password: str, *, replication: bool = False) -> None:
        rep = "REPLICATION" if replication else "NOREPLICATION"
        self.execute(f"CREATE ROLE {name} LOGIN {rep} PASSWORD '{password}'")

    def dsn(self, user: str = "postgres", password: str | None = None) -> str:
        secret = f":{password}" if password is not None else ""
        return f"postgresql://{user}{secret}@127.0.0.1:{self.port}"

    def digest(self, db: str, table: str) -> tuple[int, str]:
        return digest_of(self.conninfo(db), table)
