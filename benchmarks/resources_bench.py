"""Resource types beside their native tools (issues 11 and 12), measured in one run.

snowvault is driven the way a user drives it: a ``snowvault server`` process over a
fresh data directory, resources registered with the extension API's RegisterResource,
backups and restores started with boto3 (StartBackupJob, StartRestoreJob, a plan rule
with EnableContinuousBackup for PostgreSQL's continuous point) and polled with
Describe* every 0.2 s. Each snowvault figure is the wall time from the Start call to the
first poll that sees the job final, so it includes the worker's pick-up (poll 0.2 s).
What a point adds to its vault is the growth of the vault's folder on disk (du).

Native tools run on the same data in the same run, right before or after snowvault:

- PostgreSQL (issue 11): a pgbench cluster (scale 50; ``--quick``: 5) started as the
  ``postgres`` user in a temp dir on a free loopback port; ``pg_basebackup -Ft -z`` to a
  file; ``pg_basebackup -Ft`` (uncompressed) to a file backed up by restic; after
  ``pgbench -T 20`` a second snowvault point and restic's backup of a new tar; the
  continuous point's WAL lag (commit -> in the vault's restorable window) under that
  load and a point-in-time restore.
- Issue 12: MariaDB (the shared 127.0.0.1:3306 server, a database of its own; dump to a
  file with the plugin's dump options), SQLite (``sqlite3 .backup``), Redis (a
  redis-server of its own, ``redis-cli --rdb``), S3 (a moto server; ``aws s3 sync``
  from the venv's awscli), BlockDevice (a 512 MiB sparse image: ``dd conv=sparse`` and
  restic); and what a second point adds after a 1% change.

Usage: .venv/bin/python benchmarks/resources_bench.py [--quick] [--only pg,mysql,...]
       [--workdir DIR] [--results-dir DIR]
(``make bench-resources``; ``make bench-tools`` installs restic). Output: a Markdown
report on stdout and in benchmarks/results/resources-YYYYMMDD.md (``-quick`` added),
then one line of JSON. A section that fails records its error and the run goes on.

Depends only on the standard library, boto3 and psycopg (both in the venv) and the
tools' command lines; it does not import snowvault or the tests.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import pwd
import random
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import boto3
import psycopg
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SNOWVAULT = str(BIN / "snowvault")
AWS = str(BIN / "aws")
ROLE = "arn:aws:iam::123456789012:role/backup"
FINAL_BACKUP = {"COMPLETED", "PARTIAL", "FAILED", "ABORTED", "EXPIRED"}
FINAL_RESTORE = {"COMPLETED", "FAILED", "ABORTED"}
RESTIC_PASSWORD = "resources-bench"  # a throwaway repository password, not a secret
PG_PASSWORD = "bench-Pa55"  # the throwaway cluster's backup role
MIB = 1024 * 1024
POLL = 0.2
CLUSTERED = "1% of rows changed, together"
SPREAD = "1% of rows changed, spread (every 100th)"
# the plugin's mariadb-dump options (src/snowvault/plugins/mysql.py DUMP_OPTIONS), so the
# native dump does the same work
DUMP_OPTIONS = (
    "--single-transaction",
    "--routines",
    "--triggers",
    "--events",
    "--hex-blob",
    "--quick",
    "--skip-dump-date",
    "--skip-extended-insert",
    "--no-autocommit",
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def du(path: Path) -> int:
    """Bytes allocated under ``path`` (as ``du``: holes are not counted)."""
    if path.is_file():
        return path.stat().st_blocks * 512
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


def apparent(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def postgres_user() -> dict[str, Any]:
    """subprocess arguments running a child as the ``postgres`` user (when root)."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam("postgres")
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def chown_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(path, entry.pw_uid, entry.pw_gid)


def run(
    cmd: list[str],
    *,
    stdin: Any = None,
    stdout: Any = None,
    env: dict[str, str] | None = None,
    timeout: float = 1800,
    **kwargs: Any,
) -> tuple[float, str]:
    """Run ``cmd`` to completion; (wall seconds, stdout text when not redirected)."""
    start = time.perf_counter()
    done = subprocess.run(
        cmd,
        stdin=stdin,
        stdout=stdout if stdout is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        timeout=timeout,
        check=False,
        **kwargs,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        err = (done.stderr or b"").decode(errors="replace").strip().splitlines()
        raise RuntimeError(f"{shlex.join(cmd[:3])}... exit {done.returncode}: {err[-3:]}")
    out = done.stdout.decode(errors="replace") if isinstance(done.stdout, bytes) else ""
    return seconds, out


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "not installed"


# --------------------------------------------------------------------------- results


@dataclass
class Row:
    section: str  # "pg" or the resource type
    tool: str
    phase: str
    seconds: float | None = None
    data_bytes: int | None = None  # the dataset's logical size, for MiB/s
    size: int | None = None  # what it wrote / what the point added
    note: str = ""


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        rate = (
            f" {row.data_bytes / MIB / row.seconds:.1f} MiB/s"
            if row.seconds and row.data_bytes
            else ""
        )
        size = f" size {row.size / MIB:.1f} MiB" if row.size is not None else ""
        secs = f"{row.seconds:.2f} s" if row.seconds is not None else "-"
        log(f"  {row.section} {row.tool} {row.phase}: {secs}{rate}{size} {row.note}")


# --------------------------------------------------------------------------- snowvault


class Server:
    """A snowvault server process over a fresh data dir (the way tests/helpers start one)."""

    def __init__(self, root: Path, allow: list[Path]) -> None:
        self.home = root / "home"
        self.data_dir = root / "data"
        self.home.mkdir(parents=True)
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
        }
        args = [SNOWVAULT, "init", "--data-dir", str(self.data_dir), "--port", str(self.port)]
        args += [a for p in allow for a in ("--allow-path", str(p))]
        _, out = run([*args, "--no-profile", "--json"], env=self.env, timeout=120)
        self.creds: dict[str, str] = json.loads(out.strip().splitlines()[-1])
        config_path = self.data_dir / "config.json"
        config = json.loads(config_path.read_text())
        # the continuous point ships at least every 5 s (default 30 s) and the streamer
        # supervisor passes every second (default 5 s): said in the report
        config["worker"].update(continuous_seconds=1.0, continuous_ship_seconds=5.0)
        config_path.write_text(json.dumps(config))
        self.log_path = root / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.launch([SNOWVAULT])

    def launch(self, snowvault: list[str]) -> None:
        """Run ``snowvault`` (the command line that stands for the CLI: the installed
        one, or a wrapper of it) ``server`` over this data directory, its output into
        the log, and wait until it listens (90 s at most)."""
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                [*snowvault, "server", "--data-dir", str(self.data_dir)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if "snowvault listening on" in self.log_path.read_text(errors="replace"):
                self.backup = self.make_client()
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("server did not start: " + self.log_path.read_text()[-2000:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self.proc = None

    def make_client(self) -> Any:
        return boto3.client(
            "backup",
            endpoint_url=f"http://127.0.0.1:{self.port}",
            region_name=self.creds["region"],
            aws_access_key_id=self.creds["access_key_id"],
            aws_secret_access_key=self.creds["secret_access_key"],
            config=Config(retries={"max_attempts": 3, "mode": "standard"}),
        )

    @staticmethod
    def window_of(client: Any, vault: str, rp_arn: str) -> dict[str, str]:
        """DescribeRecoveryPoint's SnowvaultRestorableWindow (an extension member that
        botocore's model drops, so read from the raw answer)."""
        seen: dict[str, str] = {}

        def keep(http_response: Any, **_: Any) -> None:
            seen.update(json.loads(http_response.content).get("SnowvaultRestorableWindow") or {})

        client.meta.events.register("after-call.backup.DescribeRecoveryPoint", keep)
        try:
            client.describe_recovery_point(BackupVaultName=vault, RecoveryPointArn=rp_arn)
        finally:
            client.meta.events.unregister("after-call.backup.DescribeRecoveryPoint", keep)
        return seen

    def ext(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        import urllib3

        data = json.dumps(body).encode()
        url = f"http://127.0.0.1:{self.port}/_snowvault/v1/{action}"
        req = AWSRequest("POST", url, data=data, headers={"Content-Type": "application/json"})
        creds = Credentials(self.creds["access_key_id"], self.creds["secret_access_key"])
        SigV4Auth(creds, "snowvault", self.creds["region"]).add_auth(req)
        resp = urllib3.request("POST", url, body=data, headers=dict(req.headers.items()))
        doc: dict[str, Any] = json.loads(resp.data or b"{}")
        if resp.status != 200:
            raise RuntimeError(f"{action}: {resp.status} {doc}")
        return doc

    def register(self, kind: str, name: str, source: str, **properties: str) -> str:
        body: dict[str, Any] = {"ResourceType": kind, "Name": name, "Source": source}
        if properties:
            body["Properties"] = properties
        return str(self.ext("RegisterResource", body)["ResourceArn"])

    def vault(self, name: str) -> Path:
        self.backup.create_backup_vault(BackupVaultName=name)
        region = self.data_dir / "storage" / self.creds["region"]
        found = [p for p in region.glob(f"*/{name}-*") if p.is_dir()]
        if len(found) != 1:
            raise RuntimeError(f"vault folder of {name}: {found}")
        return found[0]

    def backup_job(self, vault: str, arn: str) -> tuple[float, dict[str, Any]]:
        start = time.perf_counter()
        job_id = self.backup.start_backup_job(
            BackupVaultName=vault, ResourceArn=arn, IamRoleArn=ROLE
        )["BackupJobId"]
        while True:
            job: dict[str, Any] = self.backup.describe_backup_job(BackupJobId=job_id)
            if job["State"] in FINAL_BACKUP:
                seconds = time.perf_counter() - start
                break
            time.sleep(POLL)
        if job["State"] != "COMPLETED":
            raise RuntimeError(f"backup job {job['State']}: {job.get('StatusMessage')}")
        return seconds, job

    def restore_job(self, rp_arn: str, metadata: dict[str, str]) -> float:
        start = time.perf_counter()
        job_id = self.backup.start_restore_job(
            RecoveryPointArn=rp_arn, Metadata=metadata, IamRoleArn=ROLE
        )["RestoreJobId"]
        while True:
            job = self.backup.describe_restore_job(RestoreJobId=job_id)
            if job["Status"] in FINAL_RESTORE:
                seconds = time.perf_counter() - start
                break
            time.sleep(POLL)
        if job["Status"] != "COMPLETED":
            raise RuntimeError(f"restore job {job['Status']}: {job.get('StatusMessage')}")
        return seconds


def sv_points(
    res: Results,
    sv: Server,
    section: str,
    vault: str,
    arn: str,
    data_bytes: int,
    changes: list[tuple[str, Callable[[], None]]],
    restore: Callable[[str], float] | None,
) -> None:
    """Point 1 (timed), a restore of it, then one more point after each change (what it
    added to the vault)."""
    folder = sv.vault(vault)
    before = du(folder)
    seconds, job = sv.backup_job(vault, arn)
    first = du(folder) - before
    res.add(Row(section, "snowvault", "backup", seconds, data_bytes, first, "vault growth"))
    if restore is not None:
        res.add(Row(section, "snowvault", "restore", restore(job["RecoveryPointArn"]), data_bytes))
    for label, change in changes:
        change()
        before = du(folder)
        seconds, _ = sv.backup_job(vault, arn)
        res.add(
            Row(
                section,
                "snowvault",
                f"next point, {label}",
                seconds,
                data_bytes,
                du(folder) - before,
                "vault growth",
            )
        )


# --------------------------------------------------------------------------- restic


class Restic:
    def __init__(self, root: Path) -> None:
        self.env = dict(
            os.environ,
            RESTIC_REPOSITORY=str(root / "repo"),
            RESTIC_PASSWORD=RESTIC_PASSWORD,
            RESTIC_CACHE_DIR=str(root / "cache"),
        )
        self.repo = root / "repo"
        run(["restic", "init", "--repository-version", "2"], env=self.env)

    def backup(self, path: Path) -> tuple[float, dict[str, Any]]:
        seconds, out = run(
            ["restic", "backup", "--json", "--host", "bench", str(path)], env=self.env
        )
        summary: dict[str, Any] = {}
        for line in out.splitlines():
            with contextlib.suppress(ValueError):
                doc = json.loads(line)
                if doc.get("message_type") == "summary":
                    summary = doc
        return seconds, summary

    def restore(self, target: Path) -> float:
        return run(["restic", "restore", "latest", "--target", str(target)], env=self.env)[0]


# --------------------------------------------------------------------------- PostgreSQL


HBA = """local   all          all                        trust
local   replication  all                        trust
host    replication  all        127.0.0.1/32    scram-sha-256
host    all          all        127.0.0.1/32    scram-sha-256
"""
PG_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "shared_buffers": "'128MB'",
    "max_connections": "40",
    "fsync": "off",
    "synchronous_commit": "off",
    "wal_level": "replica",
    "max_wal_senders": "8",
    "max_replication_slots": "8",
    "max_wal_size": "'4GB'",
    "checkpoint_timeout": "'30min'",
}


def pg_bin(name: str) -> str:
    for root in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (root / name).exists():
            return str(root / name)
    return shutil.which(name) or name


class Cluster:
    """A throwaway cluster run as ``postgres`` in ``base`` (socket there too)."""

    def __init__(self, base: Path, data: Path | None = None) -> None:
        self.base = base
        self.base.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base, 0o755)
        chown_postgres(self.base)
        self.data = data or base / "pgdata"
        self.port = free_port()
        self.running = False

    def init(self) -> Cluster:
        run(
            [
                pg_bin("initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "-N",
            ],
            cwd="/",
            **postgres_user(),
        )
        with open(self.data / "postgresql.conf", "a") as f:
            f.writelines(f"{k} = {v}\n" for k, v in PG_SETTINGS.items())
        (self.data / "pg_hba.conf").write_text(HBA)
        return self

    def start(self) -> Cluster:
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.base}"
        run(
            [
                pg_bin("pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.base / "server.log"),
                "-w",
                "-t",
                "120",
                "-o",
                opts,
                "start",
            ],
            cwd="/",
            **postgres_user(),
        )
        self.running = True
        return self

    def stop(self) -> None:
        if not self.running:
            return
        for mode in ("fast", "immediate"):
            done = subprocess.run(
                [pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"],
                capture_output=True,
                cwd="/",
                check=False,
                timeout=120,
                **postgres_user(),
            )
            if done.returncode == 0:
                break
        self.running = False

    def conninfo(self, db: str = "postgres") -> str:
        return f"host={self.base} port={self.port} dbname={db} user=postgres"

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            cur = conn.execute(sql.encode())
            return list(cur.fetchall()) if cur.description else []

    def libpq_args(self) -> list[str]:
        return ["-h", str(self.base), "-p", str(self.port), "-U", "postgres"]


def bench_postgresql(res: Results, sv: Server, work: Path, scale: int, pgbench_s: int) -> None:
    base = work / "pg"
    cluster = Cluster(base).init().start()
    try:
        _pg_body(res, sv, work, cluster, scale, pgbench_s)
    finally:
        sv.stop()  # the continuous point's pg_receivewal goes with the server
        cluster.stop()


def _pg_body(
    res: Results, sv: Server, work: Path, cluster: Cluster, scale: int, pgbench_s: int
) -> None:
    cluster.execute(f"CREATE ROLE backup LOGIN REPLICATION PASSWORD '{PG_PASSWORD}'")
    log(f"pgbench -i -s {scale}")
    seconds, _ = run(["pgbench", "-i", "-q", "-s", str(scale), *cluster.libpq_args(), "postgres"])
    cluster.execute("CHECKPOINT")
    size = int(cluster.execute("SELECT sum(pg_database_size(datname)) FROM pg_database")[0][0])
    res.facts["pg"] = {"scale": scale, "init_seconds": round(seconds, 1), "cluster_bytes": size}
    log(f"cluster {size / MIB:.0f} MiB (pgbench -i {seconds:.0f} s)")

    arn = sv.register(
        "PostgreSQL",
        "bench-pg",
        f"postgresql://backup@127.0.0.1:{cluster.port}",
        password=PG_PASSWORD,
    )
    folder = sv.vault("pg")
    seconds, _ = sv.backup_job("pg", arn)
    first = du(folder)
    res.add(Row("pg", "snowvault", "snapshot 1", seconds, size, first, "vault growth"))

    tars = work / "pg-tar"
    tars.mkdir()
    gz = work / "pg-gz"
    seconds, _ = run(
        [
            pg_bin("pg_basebackup"),
            *cluster.libpq_args(),
            "-D",
            str(gz),
            "-Ft",
            "-z",
            "-X",
            "fetch",
            "--checkpoint=fast",
            "--no-manifest",
        ]
    )
    res.add(Row("pg", "pg_basebackup -Ft -z", "snapshot 1", seconds, size, du(gz), "gzip file"))
    shutil.rmtree(gz)
    restic = Restic(work / "pg-restic")

    def restic_round(phase: str) -> None:
        shutil.rmtree(tars)
        secs, _ = run(
            [
                pg_bin("pg_basebackup"),
                *cluster.libpq_args(),
                "-D",
                str(tars),
                "-Ft",
                "-X",
                "fetch",
                "--checkpoint=fast",
                "--no-manifest",
            ]
        )
        res.add(Row("pg", "pg_basebackup -Ft", phase, secs, size, du(tars), "tar file"))
        before = du(restic.repo)
        secs, summary = restic.backup(tars)
        added = du(restic.repo) - before
        res.add(
            Row(
                "pg",
                "restic (of the tar)",
                phase,
                secs,
                size,
                added,
                f"repo growth; data_added {summary.get('data_added', 0) / MIB:.1f} MiB",
            )
        )

    restic_round("snapshot 1")

    # continuous point: a plan rule, its first base backup, then pgbench with a marker
    # commit every second whose arrival in the restorable window is watched
    sv.vault("pitr")
    rule = {
        "RuleName": "pitr",
        "TargetBackupVaultName": "pitr",
        "EnableContinuousBackup": True,
        "Lifecycle": {"DeleteAfterDays": 7},
    }
    plan = sv.backup.create_backup_plan(BackupPlan={"BackupPlanName": "pitr", "Rules": [rule]})
    cluster.execute("CREATE TABLE bench_marks (n int, at timestamptz DEFAULT clock_timestamp())")
    start = time.perf_counter()
    sv.backup.create_backup_selection(
        BackupPlanId=plan["BackupPlanId"],
        BackupSelection={"SelectionName": "pg", "IamRoleArn": ROLE, "Resources": [arn]},
    )
    rp_arn = ""
    while time.perf_counter() - start < 900:
        points = sv.backup.list_recovery_points_by_backup_vault(BackupVaultName="pitr")
        done = [p for p in points["RecoveryPoints"] if p["Status"] == "COMPLETED"]
        if done:
            rp_arn = done[0]["RecoveryPointArn"]
            break
        time.sleep(0.5)
    if not rp_arn:
        raise RuntimeError("the continuous point never became COMPLETED")
    res.add(
        Row(
            "pg",
            "snowvault continuous",
            "first base backup",
            time.perf_counter() - start,
            size,
            note="selection created -> point COMPLETED",
        )
    )

    watch = Watch(sv, rp_arn)
    watch.start()
    try:
        _pg_load_and_pitr(res, sv, work, cluster, folder, arn, restic_round, size, pgbench_s, watch)
    finally:
        watch.stop.set()
        watch.join(timeout=30)


class Watch(threading.Thread):
    """Polls the continuous point's restorable window every 0.25 s: (wall, earliest, latest)."""

    def __init__(self, sv: Server, rp_arn: str) -> None:
        super().__init__(daemon=True)
        self.sv, self.rp_arn = sv, rp_arn
        self.seen: list[tuple[float, dt.datetime, dt.datetime]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        client = self.sv.make_client()  # boto3 clients are not shared across threads
        while not self.stop.is_set():
            with contextlib.suppress(Exception):
                window = self.sv.window_of(client, "pitr", self.rp_arn)
                if window.get("Latest") and window.get("Earliest"):
                    self.seen.append(
                        (
                            time.time(),
                            dt.datetime.fromisoformat(window["Earliest"]),
                            dt.datetime.fromisoformat(window["Latest"]),
                        )
                    )
            self.stop.wait(0.25)

    def arrival(self, at: dt.datetime, after: float) -> float | None:
        """Wall time of the first poll (after ``after``) whose window holds ``at``."""
        for wall, earliest, latest in list(self.seen):
            if wall >= after and earliest <= at <= latest:
                return wall
        return None

    def restarts(self) -> int:
        starts = {earliest for _w, earliest, _l in list(self.seen)}
        return max(0, len(starts) - 1)


def _markers(
    cluster: Cluster, table: str, count: int, every: float, instant_after: int
) -> tuple[list[tuple[int, float, dt.datetime]], dict[str, Any]]:
    """``count`` marker commits ``every`` seconds: (n, wall after commit, server time);
    an instant taken between marker ``instant_after`` and the next."""
    marks: list[tuple[int, float, dt.datetime]] = []
    instant: dict[str, Any] = {}
    with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
        for n in range(1, count + 1):
            row = conn.execute(
                f"INSERT INTO {table} (n) VALUES (%s) RETURNING at".encode(), (n,)
            ).fetchone()
            assert row is not None
            marks.append((n, time.time(), row[0]))
            if n == instant_after:
                time.sleep(every / 2)
                got = conn.execute("SELECT clock_timestamp()").fetchone()
                assert got is not None
                instant = {"at": got[0], "count": n}
                time.sleep(every / 2)
            else:
                time.sleep(every)
    return marks, instant


def _lags(watch: Watch, marks: list[tuple[int, float, dt.datetime]], wait: float) -> list[float]:
    deadline = time.time() + wait
    while time.time() < deadline:  # until every mark arrived (or the wait is over)
        if all(watch.arrival(at, wall) is not None for _n, wall, at in marks):
            break
        time.sleep(0.5)
    found = [watch.arrival(at, wall) for _n, wall, at in marks]
    return sorted(a - wall for a, (_n, wall, _at) in zip(found, marks, strict=True) if a)


def _lag_facts(lags: list[float], marks: int) -> dict[str, Any]:
    return {
        "marks": marks,
        "arrived": len(lags),
        "p50": lags[len(lags) // 2] if lags else None,
        "p99": lags[min(len(lags) - 1, int(len(lags) * 0.99))] if lags else None,
        "max": lags[-1] if lags else None,
    }


def _pg_load_and_pitr(
    res: Results,
    sv: Server,
    work: Path,
    cluster: Cluster,
    folder: Path,
    arn: str,
    restic_round: Callable[[str], None],
    size: int,
    pgbench_s: int,
    watch: Watch,
) -> None:
    rp_arn = watch.rp_arn
    cluster.execute("CREATE TABLE load_marks (n int, at timestamptz DEFAULT clock_timestamp())")
    cluster.execute("CREATE TABLE quiet_marks (n int, at timestamptz DEFAULT clock_timestamp())")
    gaps_before = sv.log_path.read_text(errors="replace").count("WAL gap")
    log(f"pgbench -T {pgbench_s} with a marker commit every second")
    out: dict[str, str] = {}

    def load() -> None:
        out["pgbench"] = run(
            [
                "pgbench",
                "-n",
                "-c",
                "4",
                "-j",
                "2",
                "-T",
                str(pgbench_s),
                *cluster.libpq_args(),
                "postgres",
            ]
        )[1]

    loader = threading.Thread(target=load)
    loader.start()
    marks, load_instant = _markers(cluster, "load_marks", pgbench_s - 1, 1.0, pgbench_s // 2)
    loader.join()
    tps = next((ln for ln in out.get("pgbench", "").splitlines() if ln.startswith("tps")), "")
    lags = _lags(watch, marks, 120)
    gaps = sv.log_path.read_text(errors="replace").count("WAL gap") - gaps_before
    res.facts["wal_lag_load"] = _lag_facts(lags, len(marks)) | {
        "pgbench": tps.strip(),
        "window_restarts": watch.restarts(),
        "wal_gaps_logged": gaps,
    }
    log(f"WAL lag under load: {res.facts['wal_lag_load']}")

    before = du(folder)
    seconds, _ = sv.backup_job("pg", arn)
    res.add(
        Row("pg", "snowvault", "snapshot 2", seconds, size, du(folder) - before, "vault growth")
    )
    restic_round("snapshot 2")

    # PITR: first to the instant in the middle of the pgbench run, then (the load over)
    # to an instant between two quiet marker commits
    target = work / "data" / "pitr-restored"
    _pitr(res, sv, work, target, rp_arn, load_instant, "load_marks", size, "mid-pgbench")
    log("quiet marker commits")
    quiet, quiet_instant = _markers(cluster, "quiet_marks", 8, 1.0, 4)
    lags = _lags(watch, quiet, 60)
    res.facts["wal_lag_quiet"] = _lag_facts(lags, len(quiet))
    log(f"WAL lag without load: {res.facts['wal_lag_quiet']}")
    if target.exists():
        shutil.rmtree(target)
    _pitr(res, sv, work, target, rp_arn, quiet_instant, "quiet_marks", size, "after the load")


def _pitr(
    res: Results,
    sv: Server,
    work: Path,
    target: Path,
    rp_arn: str,
    instant: dict[str, Any],
    table: str,
    size: int,
    label: str,
) -> None:
    if not instant:
        res.add(Row("pg", "snowvault continuous", f"PITR restore ({label})", note="no instant"))
        return
    try:
        seconds = sv.restore_job(
            rp_arn, {"targetDirectory": str(target), "pointInTime": instant["at"].isoformat()}
        )
    except Exception as exc:
        message = " ".join(str(exc).split())[:300]
        res.add(Row("pg", "snowvault continuous", f"PITR restore ({label})", note=message))
        return
    res.add(
        Row(
            "pg",
            "snowvault continuous",
            f"PITR restore job ({label})",
            seconds,
            size,
            note=f"instant after marker {instant['count']}",
        )
    )
    restored = Cluster(work / f"pitr-run-{label.split()[0]}", data=target)
    start = time.perf_counter()
    restored.start()
    try:
        while restored.execute("SELECT pg_is_in_recovery()")[0][0]:
            if time.perf_counter() - start > 600:
                raise RuntimeError("the restored cluster never left recovery")
            time.sleep(0.1)
        seconds = time.perf_counter() - start
        count = restored.execute(f"SELECT count(*) FROM {table}")[0][0]
    finally:
        restored.stop()
    ok = "as at the instant" if count == instant["count"] else "**WRONG ROW COUNT**"
    res.add(
        Row(
            "pg",
            "pg_ctl start on the restored dir",
            f"replay + promote ({label})",
            seconds,
            note=f"{table}: {count} rows, expected {instant['count']}: {ok}",
        )
    )


# --------------------------------------------------------------------------- MariaDB


def bench_mysql(res: Results, sv: Server, work: Path, rows: int) -> None:
    db = f"svbench_{os.getpid()}"
    conn = ["mariadb", "--protocol=TCP", "-h", "127.0.0.1", "-P", "3306", "-u", "root"]
    created: list[str] = []

    def sql(text: str, database: str = "") -> None:
        run([*conn, *([database] if database else []), "-e", text])

    try:
        sql(f"CREATE DATABASE {db}")
        created.append(db)
        sql(
            "CREATE TABLE t (id INT PRIMARY KEY, a CHAR(32), b INT, c VARCHAR(100));"
            f"INSERT INTO t SELECT seq, md5(seq), seq * 7, concat('row ', seq, ' ',"
            f" repeat('x', seq % 60)) FROM seq_1_to_{rows};",
            db,
        )
        dump = work / "mysql.sql"
        with dump.open("wb") as out:
            secs, _ = run(["mariadb-dump", *conn[1:], *DUMP_OPTIONS, db], stdout=out)
        size = dump.stat().st_size
        res.facts["MySQL"] = {"rows": rows, "dump_bytes": size}
        res.add(Row("MySQL", "mariadb-dump (plugin's options)", "backup", secs, size, size))
        with (work / "mysql-ext.sql").open("wb") as out:
            secs, _ = run(["mariadb-dump", *conn[1:], "--single-transaction", db], stdout=out)
        res.add(
            Row(
                "MySQL",
                "mariadb-dump (defaults)",
                "backup",
                secs,
                size,
                (work / "mysql-ext.sql").stat().st_size,
                "multi-row INSERTs",
            )
        )
        sql(f"CREATE DATABASE {db}_n")
        created.append(f"{db}_n")
        with dump.open("rb") as src:
            secs, _ = run([*conn, f"{db}_n"], stdin=src)
        res.add(Row("MySQL", "mariadb < dump", "restore", secs, size))

        def clustered() -> None:
            sql(f"UPDATE t SET b = b + 1 WHERE id <= {rows // 100}", db)

        def spread() -> None:
            sql("UPDATE t SET b = b + 1 WHERE id % 100 = 50", db)

        def restore(rp: str) -> float:
            created.append(f"{db}_s")
            return sv.restore_job(
                rp,
                {
                    "targetDsn": "mysql://root@127.0.0.1:3306",
                    "databases": db,
                    "renameTo": f"{db}_s",
                },
            )

        arn = sv.register("MySQL", "bench-mysql", "mysql://root@127.0.0.1:3306", databases=db)
        sv_points(
            res,
            sv,
            "MySQL",
            "mysql",
            arn,
            size,
            [(CLUSTERED, clustered), (SPREAD, spread)],
            restore,
        )
        with dump.open("wb") as out:
            secs, _ = run(["mariadb-dump", *conn[1:], *DUMP_OPTIONS, db], stdout=out)
        res.add(
            Row(
                "MySQL",
                "mariadb-dump (plugin's options)",
                "next point",
                secs,
                size,
                dump.stat().st_size,
                "a whole new dump",
            )
        )
    finally:
        for name in created:
            with contextlib.suppress(Exception):
                sql(f"DROP DATABASE IF EXISTS {name}")


# --------------------------------------------------------------------------- SQLite


def bench_sqlite(res: Results, sv: Server, work: Path, rows: int) -> None:
    import sqlite3

    path = work / "data" / "app.sqlite"
    rng = random.Random(12)
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b INTEGER, c BLOB)")
        db.executemany(
            "INSERT INTO t VALUES (?, ?, ?, ?)",
            ((i, f"row {i} " + "x" * (i % 60), i * 7, rng.randbytes(48)) for i in range(rows)),
        )
        db.commit()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = path.stat().st_size
    res.facts["SQLite"] = {"rows": rows, "file_bytes": size}
    copy = work / "sqlite-backup.sqlite"
    secs, _ = run(["sqlite3", str(path), f".backup '{copy}'"])
    res.add(Row("SQLite", "sqlite3 .backup", "backup", secs, size, copy.stat().st_size))
    secs, _ = run(["sqlite3", str(work / "sqlite-restored.sqlite"), f".restore '{copy}'"])
    res.add(Row("SQLite", "sqlite3 .restore", "restore", secs, size))

    def change(where: str) -> Callable[[], None]:
        def apply() -> None:
            with contextlib.closing(sqlite3.connect(path)) as db:
                db.execute(f"UPDATE t SET b = b + 1 WHERE {where}")
                db.commit()
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

        return apply

    def restore(rp: str) -> float:
        return sv.restore_job(rp, {"targetPath": str(work / "data" / "sv-restored.sqlite")})

    arn = sv.register("SQLite", "bench-sqlite", str(path))
    changes = [(CLUSTERED, change(f"id < {rows // 100}")), (SPREAD, change("id % 100 = 50"))]
    sv_points(res, sv, "SQLite", "sqlite", arn, size, changes, restore)
    copy.unlink()
    secs, _ = run(["sqlite3", str(path), f".backup '{copy}'"])
    res.add(
        Row(
            "SQLite",
            "sqlite3 .backup",
            "next point",
            secs,
            size,
            copy.stat().st_size,
            "a whole new copy",
        )
    )


# --------------------------------------------------------------------------- Redis


SET_KEYS = (
    "for i = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]) do "
    "redis.call('SET', 'k:' .. i, redis.sha1hex(ARGV[4] .. i) .. redis.sha1hex(i .. ARGV[4])) "
    "end return 1"
)


class RedisServer:
    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True)
        os.chmod(root, 0o777)
        self.root = root
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(root),
                "--dbfilename",
                "dump.rdb",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            **postgres_user(),
        )

    def cli(self, *args: str) -> str:
        return run(["redis-cli", "-p", str(self.port), *args])[1].strip()

    def wait_loaded(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(RuntimeError):
                if "loading:0" in self.cli("INFO", "persistence").split():
                    return
            time.sleep(0.05)
        raise RuntimeError("redis did not come up")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def bench_redis(res: Results, sv: Server, work: Path, keys: int) -> None:
    server = RedisServer(work / "redis")
    try:
        server.wait_loaded()
        for lo in range(1, keys + 1, 100_000):
            server.cli("EVAL", SET_KEYS, "0", str(lo), str(min(keys, lo + 99_999)), "1", "a")
        rdb = work / "redis-backup.rdb"
        secs, _ = run(["redis-cli", "-p", str(server.port), "--rdb", str(rdb)])
        size = rdb.stat().st_size
        res.facts["Redis"] = {"keys": keys, "rdb_bytes": size}
        res.add(Row("Redis", "redis-cli --rdb", "backup", secs, size, size))
        load_dir = work / "redis-load"
        load_dir.mkdir()
        os.chmod(load_dir, 0o777)
        shutil.copy(rdb, load_dir / "dump.rdb")
        start = time.perf_counter()
        loaded = RedisServer.__new__(RedisServer)
        loaded.root, loaded.port = load_dir, free_port()
        loaded.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(loaded.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(load_dir),
                "--dbfilename",
                "dump.rdb",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            **postgres_user(),
        )
        try:
            loaded.wait_loaded()
            secs = time.perf_counter() - start
            got = loaded.cli("DBSIZE")
        finally:
            loaded.stop()
        res.add(
            Row("Redis", "redis-server loads the RDB", "restore", secs, size, note=f"{got} keys")
        )

        def clustered() -> None:  # keys in one hash slot range do not sit together in
            # an RDB (dict order), so "clustered" is the first 1% of key names
            server.cli("EVAL", SET_KEYS, "0", "1", str(keys // 100), "1", "b")

        def spread() -> None:
            server.cli("EVAL", SET_KEYS, "0", "50", str(keys), "100", "c")

        def restore(rp: str) -> float:
            return sv.restore_job(rp, {"targetPath": str(work / "data" / "sv-restored.rdb")})

        arn = sv.register("Redis", "bench-redis", f"redis://127.0.0.1:{server.port}")
        changes = [
            ("1% of keys (the first names) set anew", clustered),
            ("1% of keys (every 100th name) set anew", spread),
        ]
        sv_points(res, sv, "Redis", "redis", arn, size, changes, restore)
        rdb.unlink()
        secs, _ = run(["redis-cli", "-p", str(server.port), "--rdb", str(rdb)])
        res.add(
            Row(
                "Redis",
                "redis-cli --rdb",
                "next point",
                secs,
                size,
                rdb.stat().st_size,
                "a whole new RDB",
            )
        )
    finally:
        server.stop()


# --------------------------------------------------------------------------- S3


def bench_s3(res: Results, sv: Server, work: Path, objects: int) -> None:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = dict(
        os.environ,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        AWS_PAGER="",
    )
    try:
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                s3.list_buckets()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        for bucket in ("media", "media-native-back", "media-sv-back"):
            s3.create_bucket(Bucket=bucket)
        rng = random.Random(7)
        size = 0
        for i in range(objects):  # 1 MiB each: half random, half text-like
            body = rng.randbytes(MIB // 2) + (f"object {i} line\n" * 40000)[: MIB // 2].encode()
            s3.put_object(Bucket="media", Key=f"m/{i:04d}.bin", Body=body)
            size += len(body)
        res.facts["S3"] = {"objects": objects, "bytes": size}
        mirror = work / "s3-mirror"
        aws = [AWS, "--endpoint-url", endpoint, "s3", "sync", "--only-show-errors"]
        secs, _ = run([*aws, "s3://media/m/", str(mirror)], env=env)
        res.add(Row("S3", "aws s3 sync (to a folder)", "backup", secs, size, du(mirror)))
        secs, _ = run([*aws, str(mirror), "s3://media-native-back/"], env=env)
        res.add(Row("S3", "aws s3 sync (to a bucket)", "restore", secs, size))

        def change() -> None:
            for i in range(max(1, objects // 100)):
                body = rng.randbytes(MIB // 2) + (f"changed {i}\n" * 60000)[: MIB // 2].encode()
                s3.put_object(Bucket="media", Key=f"m/{i * 100:04d}.bin", Body=body)

        def restore(rp: str) -> float:
            return sv.restore_job(rp, {"targetBucket": "media-sv-back"})

        arn = sv.register(
            "S3",
            "bench-s3",
            "s3://media/m",
            endpoint=endpoint,
            access_key_id="testing",
            secret_access_key="testing",
        )
        sv_points(
            res, sv, "S3", "s3", arn, size, [("1% of the objects rewritten", change)], restore
        )
        secs, _ = run([*aws, "s3://media/m/", str(mirror)], env=env)
        res.add(
            Row(
                "S3",
                "aws s3 sync (to a folder)",
                "next point",
                secs,
                size,
                max(1, objects // 100) * MIB,
                "the folder is updated in place: no 2nd point",
            )
        )
    finally:
        moto.terminate()
        moto.wait(timeout=30)


# --------------------------------------------------------------------------- BlockDevice


def bench_block(res: Results, sv: Server, work: Path, size_mib: int) -> None:
    image = work / "data" / "disk.img"
    block = 64 * 1024
    blocks = size_mib * MIB // block
    rng = random.Random(3)
    text = b"".join(
        f"record {i:08d} status=ok value={i * 37 % 1000}\n".encode() for i in range(2000)
    )
    with image.open("wb") as f:  # per 64 KiB block: 40% hole, 30% random, 30% text-like
        f.truncate(size_mib * MIB)
        for i in range(blocks):
            kind = rng.random()
            if kind < 0.4:
                continue
            f.seek(i * block)
            f.write(
                rng.randbytes(block)
                if kind < 0.7
                else text[(i * 97) % 1000 :][:block].ljust(block, b".")
            )
    logical = size_mib * MIB
    res.facts["BlockDevice"] = {"image_bytes": logical, "allocated_bytes": du(image)}
    copy = work / "dd-copy.img"
    secs, _ = run(["dd", f"if={image}", f"of={copy}", "bs=4M", "conv=sparse", "status=none"])
    res.add(Row("BlockDevice", "dd conv=sparse (to a file)", "backup", secs, logical, du(copy)))
    back = work / "dd-back.img"
    secs, _ = run(["dd", f"if={copy}", f"of={back}", "bs=4M", "conv=sparse", "status=none"])
    res.add(Row("BlockDevice", "dd conv=sparse (back)", "restore", secs, logical))
    back.unlink()
    restic = Restic(work / "block-restic")
    secs, summary = restic.backup(image)
    res.add(Row("BlockDevice", "restic", "backup", secs, logical, du(restic.repo), "repo size"))
    target = work / "restic-restore"
    res.add(Row("BlockDevice", "restic", "restore", restic.restore(target), logical))
    shutil.rmtree(target)

    def change() -> None:  # rewrite 1% of the 64 KiB blocks
        with image.open("r+b") as f:
            for i in rng.sample(range(blocks), max(1, blocks // 100)):
                f.seek(i * block)
                f.write(rng.randbytes(block))

    def restore(rp: str) -> float:
        return sv.restore_job(rp, {"targetPath": str(work / "data" / "sv-restored.img")})

    arn = sv.register("BlockDevice", "bench-disk", str(image))
    changes = [("1% of the 64 KiB blocks rewritten, at random", change)]
    sv_points(res, sv, "BlockDevice", "block", arn, logical, changes, restore)
    before = du(restic.repo)
    secs, summary = restic.backup(image)
    res.add(
        Row(
            "BlockDevice",
            "restic",
            "next point",
            secs,
            logical,
            du(restic.repo) - before,
            f"data_added {summary.get('data_added', 0) / MIB:.1f} MiB",
        )
    )
    copy.unlink()
    secs, _ = run(["dd", f"if={image}", f"of={copy}", "bs=4M", "conv=sparse", "status=none"])
    res.add(
        Row(
            "BlockDevice",
            "dd conv=sparse (to a file)",
            "next point",
            secs,
            logical,
            du(copy),
            "a whole new copy",
        )
    )
    # the same bytes with the holes written out as zeros: one data run instead of
    # thousands, which shows what the runs between holes cost
    dense = work / "data" / "dense.img"
    run(["cp", "--sparse=never", str(image), str(dense)])
    arn = sv.register("BlockDevice", "bench-dense", str(dense))
    sv.vault("block-dense")
    seconds, _ = sv.backup_job("block-dense", arn)
    note = "the same image, holes written as zeros (one data run)"
    res.add(Row("BlockDevice", "snowvault", "backup, no holes", seconds, logical, note=note))
    secs, _ = Restic(work / "dense-restic").backup(dense)
    res.add(Row("BlockDevice", "restic", "backup, no holes", secs, logical, note=note))


# --------------------------------------------------------------------------- report


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / MIB:.1f}"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _row(r: Row) -> str:
    secs = "-" if r.seconds is None else f"{r.seconds:.2f}"
    rate = f"{r.data_bytes / MIB / r.seconds:.1f}" if r.seconds and r.data_bytes else "-"
    return f"| {r.tool} | {r.phase} | {secs} | {rate} | {_mib(r.size)} | {r.note} |"


def report(res: Results, meta: dict[str, Any]) -> str:
    head = (
        "| tool | phase | seconds | MiB/s | size MiB | note |\n"
        "| --- | --- | ---: | ---: | ---: | --- |"
    )
    lines = [
        f"# Resource types beside native tools ({meta['date']})",
        "",
        f"- command: `{meta['command']}`",
        f"- date: {meta['date']}; commit {meta['commit']}",
        f"- load average (1/5/15 min) before: {meta['load_before']}; after: {meta['load_after']}",
        f"- machine: {meta['machine']}",
        f"- versions: {meta['versions']}",
        "- snowvault driven through a real `snowvault server` process (extension API "
        "RegisterResource, boto3 StartBackupJob/StartRestoreJob, Describe* polled every "
        f"{POLL} s); the worker's continuous settings: supervisor every 1 s, shipping "
        "every 5 s (defaults 5 s and 30 s)",
        "- MiB/s = the dataset's logical size / seconds; size = the file written, or what "
        "the point added to its vault/repository on disk (du)",
        f"- total wall time: {meta['wall']:.0f} s",
        "",
    ]
    pg = [r for r in res.rows if r.section == "pg"]
    if pg or "pg" in res.errors:
        facts = res.facts.get("pg", {})
        lines += ["## PostgreSQL (issue 11)", ""]
        if facts:
            lines += [
                f"pgbench scale {facts['scale']}: cluster {facts['cluster_bytes'] / MIB:.0f} MiB "
                "(pg_database_size of all databases; "
                f"`pgbench -i` took {facts['init_seconds']} s).",
                "",
            ]
        lines += [head, *map(_row, pg), ""]
        for key, title in (
            ("wal_lag_load", "under pgbench load"),
            ("wal_lag_quiet", "without load"),
        ):
            lag = res.facts.get(key)
            if not lag:
                continue
            load = f" ({lag['pgbench']})" if lag.get("pgbench") else ""
            restarts = (
                f"; the window restarted {lag['window_restarts']} time(s) meanwhile"
                f" ({lag['wal_gaps_logged']} 'WAL gap' lines in the server log)"
                if "window_restarts" in lag
                else ""
            )
            lines += [
                f"WAL lag, commit -> inside the continuous point's restorable window, {title}"
                f"{load}: {lag['arrived']} of {lag['marks']} marker commits (one a second) "
                f"arrived; p50 {_secs(lag['p50'])}, p99 {_secs(lag['p99'])}, "
                f"max {_secs(lag['max'])}{restarts}.",
                "",
            ]
    types = [
        s
        for s in ("MySQL", "SQLite", "Redis", "S3", "BlockDevice")
        if any(r.section == s for r in res.rows) or s in res.errors
    ]
    if types:
        lines += ["## Issue 12: backup, restore and a second point after a 1% change", ""]
        for section in types:
            facts = res.facts.get(section, {})
            lines += [f"### {section}", "", ", ".join(f"{k}: {v}" for k, v in facts.items()), ""]
            lines += [head, *(_row(r) for r in res.rows if r.section == section), ""]
    if res.errors:
        lines += ["## Errors", ""]
        lines += [f"- {k}: {v}" for k, v in res.errors.items()]
        lines.append("")
    return "\n".join(lines)


def commit_id() -> str:
    rev = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "src"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return rev + (" (src/ with uncommitted changes)" if dirty.strip() else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small datasets (a smoke run)")
    parser.add_argument("--only", default="pg,mysql,sqlite,redis,s3,block")
    parser.add_argument("--workdir", type=Path, default=REPO_ROOT / "benchmarks/work/resources")
    parser.add_argument("--results-dir", type=Path, default=REPO_ROOT / "benchmarks/results")
    args = parser.parse_args()
    only = set(args.only.split(","))
    q = args.quick
    started = time.perf_counter()
    load_before = os.getloadavg()
    now = dt.datetime.now(dt.UTC)
    work: Path = args.workdir
    if work.exists():
        shutil.rmtree(work)
    (work / "data").mkdir(parents=True)
    for p in (work.parent, work, work / "data"):
        os.chmod(p, 0o755)  # the postgres user enters the PITR target's parents
    res = Results()
    sv = Server(work / "sv", allow=[work / "data"])
    sv.start()
    sections: list[tuple[str, Callable[[], None]]] = [
        ("MySQL", lambda: bench_mysql(res, sv, work, 100_000 if q else 1_000_000)),
        ("SQLite", lambda: bench_sqlite(res, sv, work, 100_000 if q else 1_500_000)),
        ("Redis", lambda: bench_redis(res, sv, work, 100_000 if q else 1_000_000)),
        ("S3", lambda: bench_s3(res, sv, work, 10 if q else 100)),
        ("BlockDevice", lambda: bench_block(res, sv, work, 64 if q else 512)),
        ("pg", lambda: bench_postgresql(res, sv, work, 5 if q else 50, 10 if q else 20)),
    ]  # PostgreSQL last: it stops the server (its continuous streamer) on the way out
    keys = {
        "MySQL": "mysql",
        "SQLite": "sqlite",
        "Redis": "redis",
        "S3": "s3",
        "BlockDevice": "block",
        "pg": "pg",
    }
    try:
        for name, fn in sections:
            if keys[name] not in only:
                continue
            log(f"== {name}")
            try:
                fn()
            except Exception as exc:  # recorded, the run goes on
                res.errors[name] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:400]}"
                log(traceback.format_exc())
    finally:
        sv.stop()
    meta = {
        "command": shlex.join([".venv/bin/python", "benchmarks/resources_bench.py", *sys.argv[1:]]),
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit_id(),
        "load_before": " / ".join(f"{x:.2f}" for x in load_before),
        "load_after": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
        "machine": f"{len(os.sched_getaffinity(0))} CPUs, Linux {platform.release()}, "
        f"Python {platform.python_version()}",
        "versions": "; ".join(
            version(c)
            for c in (
                ["restic", "version"],
                ["psql", "--version"],
                ["mariadb", "--version"],
                ["redis-server", "--version"],
                ["sqlite3", "--version"],
                [AWS, "--version"],
            )
        ),
        "wall": time.perf_counter() - started,
    }
    text = report(res, meta)
    print(text)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    name = f"resources-{now:%Y%m%d}{'-quick' if q else ''}.md"
    (args.results_dir / name).write_text(text + "\n")
    print(
        json.dumps(
            {
                "meta": meta,
                "rows": [asdict(r) for r in res.rows],
                "facts": res.facts,
                "errors": res.errors,
            },
            default=str,
        )
    )
    return 1 if res.errors else 0


if __name__ == "__main__":
    sys.exit(main())
