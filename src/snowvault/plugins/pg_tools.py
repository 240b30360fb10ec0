"""Running PostgreSQL's own programs for the PostgreSQL plugin: where the binaries are,
which unprivileged user runs a server, and a temporary instance that is stopped on
every exit path.

    bin = pg_tools.binary("pg_basebackup")          # newest /usr/lib/postgresql/N/bin
    with pg_tools.TempInstance(data_dir, superuser="postgres") as pg:
        pg.execute("SELECT 1")                    # over its private Unix socket

Servers never run as root (PostgreSQL refuses to): when the server runs as root, data
directories are handed to the ``postgres`` system user (``nobody`` when it does not
exist) and server processes run as that user. A temporary instance listens on a Unix
socket in a private 0700 directory only (``listen_addresses=''``) with its own
``hba_file`` that trusts that socket: no TCP port exists that another local user could
reach while it runs, and the restored cluster's own pg_hba.conf is not changed.

Passwords never go on a command line: :func:`client_env` puts them in PGPASSWORD.

Depends on core only (psycopg for the SQL of a temporary instance).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import psycopg

from snowvault.core.errors import Unavailable

START_TIMEOUT_SECONDS = 120
"""How long pg_ctl waits for a temporary instance (crash recovery of a large backup's
WAL included) before the restore fails."""


def bin_dir() -> str | None:
    """The newest ``/usr/lib/postgresql/<N>/bin`` holding a server (Debian's layout), or
    None (then programs are looked up on PATH). ``SNOWVAULT_PG_BIN`` overrides it."""
    override = os.environ.get("SNOWVAULT_PG_BIN")
    if override:
        return override
    found = []
    for path in glob.glob("/usr/lib/postgresql/*/bin"):
        version = os.path.basename(os.path.dirname(path))
        if version.isdigit() and os.path.exists(os.path.join(path, "pg_ctl")):
            found.append((int(version), path))
    return max(found)[1] if found else None


def binary(name: str) -> str:
    """The path of PostgreSQL program ``name``; Unavailable when it is not installed."""
    where = bin_dir()
    if where is not None and os.access(os.path.join(where, name), os.X_OK):
        return os.path.join(where, name)
    path = shutil.which(name)
    if path is None:
        raise Unavailable(
            detail=f"the PostgreSQL program {name} is not installed (package postgresql)"
        )
    return path


@dataclass(frozen=True)
class ServerUser:
    """The unprivileged user server processes run as (None: the current user)."""

    uid: int | None
    gid: int | None
    name: str

    def popen_args(self) -> dict[str, Any]:
        """``subprocess`` keyword arguments that run a child as this user."""
        if self.uid is None:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def give(self, path: str) -> None:
        """Hand ``path`` (recursively) to this user, its directories 0700."""
        for root, dirs, files in os.walk(path):
            for name in dirs:
                self._own(os.path.join(root, name))
                os.chmod(os.path.join(root, name), 0o700)
            for name in files:
                self._own(os.path.join(root, name))
        self._own(path)
        os.chmod(path, 0o700)

    def _own(self, path: str) -> None:
        if self.uid is not None and self.gid is not None:
            os.lchown(path, self.uid, self.gid)


def server_user() -> ServerUser:
    """``SNOWVAULT_PG_USER``, else ``postgres``, else ``nobody`` when running as root;
    else the current user."""
    if os.geteuid() != 0:
        return ServerUser(None, None, pwd.getpwuid(os.geteuid()).pw_name)
    names = [os.environ.get("SNOWVAULT_PG_USER") or "postgres", "nobody"]
    for name in names:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return ServerUser(entry.pw_uid, entry.pw_gid, name)
    raise Unavailable(detail="no unprivileged user (postgres or nobody) to run PostgreSQL as")


def sandbox_user() -> ServerUser:
    """Whom a temporary instance on a private copy of backed-up data runs as:
    ``SNOWVAULT_PG_SANDBOX_USER``, else ``nobody`` when running as root (never the
    ``postgres`` user, who owns this host's own clusters: the data started is whatever
    the backed-up cluster held); else the current user."""
    if os.geteuid() != 0:
        return ServerUser(None, None, pwd.getpwuid(os.geteuid()).pw_name)
    name = os.environ.get("SNOWVAULT_PG_SANDBOX_USER") or "nobody"
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise Unavailable(detail=f"no user {name!r} to run a temporary PostgreSQL as") from None
    return ServerUser(entry.pw_uid, entry.pw_gid, name)


def client_env(password: str | None = None, passfile: str | None = None) -> dict[str, str]:
    """The environment of a client program: the caller's without any PG* variable the
    operator's shell may have set, plus the password (never on a command line)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGCONNECT_TIMEOUT"] = "10"
    if password is not None:
        env["PGPASSWORD"] = password
    if passfile is not None:
        env["PGPASSFILE"] = passfile
    return env


def last_error(stderr: str) -> str:
    """The one line of a PostgreSQL program's stderr worth showing (its last error)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        for marker in ("error:", "FATAL:", "ERROR:"):
            if marker in line:
                return line[line.index(marker) + len(marker) :].strip()
    return lines[-1] if lines else "no message"


def accessible_by(user: ServerUser, path: str) -> bool:
    """Whether ``user`` can search every parent directory of ``path``."""
    if user.uid is None:
        return True
    parent = os.path.dirname(os.path.abspath(path))
    while True:
        st = os.stat(parent)
        if st.st_uid == user.uid:
            ok = bool(st.st_mode & 0o100)
        elif st.st_gid == user.gid:
            ok = bool(st.st_mode & 0o010)
        else:
            ok = bool(st.st_mode & 0o001)
        if not ok:
            return False
        if parent == "/":
            return True
        parent = os.path.dirname(parent)


class TempInstance:
    """A PostgreSQL server on ``data_dir`` for the length of a ``with`` block, reachable
    only over a Unix socket in a private directory, as ``superuser`` without password
    (its own trust-only hba file); stopped (fast, then immediate, then killed) on exit."""

    def __init__(
        self,
        data_dir: str,
        *,
        superuser: str,
        extra_hba: str = "",
        settings: Mapping[str, str] | None = None,
        user: ServerUser | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.superuser = superuser
        self.user = user or server_user()
        self._extra_hba = extra_hba
        self._settings = dict(settings or {})
        self.socket_dir = ""
        self.port = 5432  # names the socket file only: there is no TCP listener
        self._started = False

    def __enter__(self) -> TempInstance:
        self.socket_dir = tempfile.mkdtemp(prefix="snowvault-pgsock-")
        try:
            self._start()
        except BaseException:
            self._cleanup()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._cleanup()

    def _start(self) -> None:
        if not accessible_by(self.user, self.data_dir):
            raise Unavailable(
                detail=f"the {self.user.name} user cannot reach {self.data_dir} "
                "(a parent directory is not searchable)"
            )
        hba = os.path.join(self.socket_dir, "pg_hba.conf")
        with open(hba, "w", encoding="utf-8") as f:
            f.write(self._extra_hba + f"local all {_quote_hba(self.superuser)} trust\n")
        self.user.give(self.socket_dir)
        options = {  # the restored configuration may name the source's own files
            "data_directory": self.data_dir,
            "external_pid_file": "",
            "listen_addresses": "",
            "port": str(self.port),
            "unix_socket_directories": self.socket_dir,
            "hba_file": hba,
            "archive_mode": "off",
            "logging_collector": "off",
        } | self._settings
        opts = " ".join(f"-c {shlex.quote(f'{k}={v}')}" for k, v in options.items())
        log = os.path.join(self.socket_dir, "server.log")
        cmd = [binary("pg_ctl"), "-D", self.data_dir, "-l", log, "-w"]
        cmd += ["-t", str(START_TIMEOUT_SECONDS), "-o", opts, "start"]
        done = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            cwd="/",
            env=client_env(),
            timeout=START_TIMEOUT_SECONDS + 30,
            check=False,
            **self.user.popen_args(),
        )
        self._started = True  # even a failed start may leave a postmaster behind
        if done.returncode != 0:
            raise Unavailable(detail=f"the restored cluster did not start: {self._log_tail(log)}")

    def _log_tail(self, log: str) -> str:
        try:
            with open(log, encoding="utf-8", errors="replace") as f:
                return last_error(f.read())
        except OSError:
            return "no server log"

    def conninfo(self, dbname: str = "postgres", user: str | None = None) -> str:
        return psycopg.conninfo.make_conninfo(
            host=self.socket_dir, port=self.port, user=user or self.superuser, dbname=dbname
        )

    def connect(self, dbname: str = "postgres", user: str | None = None) -> psycopg.Connection[Any]:
        return psycopg.connect(self.conninfo(dbname, user), autocommit=True, connect_timeout=10)

    def execute(self, sql: str, dbname: str = "postgres") -> list[tuple[Any, ...]]:
        """Run one statement as the superuser; its rows (empty if none)."""
        with self.connect(dbname) as conn:
            cur = conn.execute(sql.encode())
            return list(cur.fetchall()) if cur.description else []

    def _cleanup(self) -> None:
        if self._started:
            self._stop()
        shutil.rmtree(self.socket_dir, ignore_errors=True)

    def _stop(self) -> None:
        for mode in ("fast", "immediate"):
            done = subprocess.run(
                [binary("pg_ctl"), "-D", self.data_dir, "-m", mode, "-w", "-t", "60", "stop"],
                capture_output=True,
                cwd="/",
                env=client_env(),
                timeout=90,
                check=False,
                **self.user.popen_args(),
            )
            if done.returncode == 0 or not os.path.exists(self._pid_file()):
                return
        with (  # last resort: the postmaster's pid
            contextlib.suppress(OSError, ValueError),
            open(self._pid_file(), encoding="ascii") as f,
        ):
            os.kill(int(f.readline().strip()), signal.SIGKILL)

    def _pid_file(self) -> str:
        return os.path.join(self.data_dir, "postmaster.pid")


def _quote_hba(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Child:
    """A client program whose stdout is a pipe and whose stderr goes to a temp file
    (so a chatty program never blocks on a full stderr pipe); killed when the ``with``
    block leaves before it ended."""

    def __init__(self, cmd: list[str], env: Mapping[str, str], stdin: Any = None) -> None:
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 (closed in __exit__)
        self.proc = subprocess.Popen(
            cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=self._err, env=dict(env), cwd="/"
        )
        assert self.proc.stdout is not None
        self.stdout: BinaryIO = self.proc.stdout  # type: ignore[assignment]

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.stdout.close()
        self._err.close()

    def finish(self) -> tuple[int, str]:
        """Wait for the program; its exit code and stderr."""
        code = self.proc.wait()
        self._err.seek(0)
        return code, self._err.read().decode("utf-8", "replace")
