"""Agents (issue 13): an agent's backup beside the embedded worker's, and jobs per minute
as agents are added, measured in one run.

Everything is driven the way an operator drives it: ``snowvault server`` processes
over fresh data directories, agents enrolled with the extension API's EnrollAgent,
resources registered with RegisterResource (``WorkerLabel: agent:HOST`` for an
agent's), boto3 StartBackupJob, and ``snowvault agent run`` processes.

1. **Throughput** (per store: ``local``, the server's data directory, and ``s3``, a
   moto server on loopback): one tree from benchmarks/datasets.py (two Django
   releases' code, a 224 MiB disk-image-like file of mixed content, 10,000 small files:
   ~290 MiB) backed up into one fresh vault by the embedded worker and into another
   fresh vault by one agent process (host ``agent-1``), then each again with no change.
   For each job: wall time (StartBackupJob to the first DescribeBackupJob that sees it
   final, polled every 0.2 s), MiB/s, the CPU seconds (user + system, from
   /proc/PID/stat) of the server, the agent and moto over the job, what the store grew
   by, and what the server received from the agent (below); the server's CPU also
   "net of idle": less what it spends idle in as long (its polling loops, measured for
   10 s before the jobs), and "less polls": also less what answering this script's own
   DescribeBackupJob every 0.2 s costs it in as long (measured for 10 s after the
   jobs; a job that takes longer is polled more, whichever runner runs it). The tree
   is read once before the first job so every job sees warm caches. Agent and server
   share the machine's two cores here; on a fleet they would not.
2. **Fleet**: for 1, 2 and 4 agents (hosts agent-1..N, one process each), a fresh
   server and vault, 200 small Directory resources (10 files of 1-8 KiB each) spread
   round robin over the hosts, one StartBackupJob each. ``--fleet-start backlog``
   (default): every job is created first (they wait in CREATED), then the N agent
   processes are started; jobs per minute = jobs / (agents spawned -> every job seen
   final, ListBackupJobs polled every 0.5 s), so the agents' start-up (about a second)
   is in it and the speed of StartBackupJob calls is not. ``live``: the agents are up
   first and the time runs from the first StartBackupJob call.

What the server receives from an agent is counted inside the agent process: the agent
runs the CLI's own ``agent run`` under a wrapper of this script (``--agent-process``)
that counts every HTTP request (request line, headers, body) and answer body the
agent's client sends and reads, per action, into a JSON file. TCP/IP framing is not
counted. For the embedded worker the server receives no data over the network (it
reads the tree from disk).

Usage: .venv/bin/python benchmarks/agent_bench.py [--quick] [--only throughput,fleet]
       [--stores local,s3] [--agents 1,2,4] [--fleet-jobs 200]
       [--fleet-catalog sqlite|postgres] [--agent-batch-fix] [--src COMMIT|worktree]
       [--workdir DIR] [--dataset-dir DIR] [--results-dir DIR] [--results-name NAME]
       [--image-mib N] [--runners embedded,agent] [--quiet-server]
(``make bench-agents BENCH_ARGS=...``). Servers and agents run the ``src/`` of one
commit (HEAD by default), extracted into the work dir, not the shared work tree.
Output: a Markdown report on stdout and in benchmarks/results/agents-YYYYMMDD.md
(``-quick`` added), then one line of JSON.
A section that fails records its error and the run goes on.

Depends on the standard library, boto3, psycopg and the sibling benchmark modules;
only the ``--agent-process`` wrapper imports snowvault (the CLI entry point).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import boto3
import datasets
from resources_bench import (
    BIN,
    MIB,
    POLL,
    REPO_ROOT,
    ROLE,
    SNOWVAULT,
    Server,
    commit_id,
    free_port,
    log,
    run,
    version,
)

SPEC = datasets.DatasetSpec(
    name="agents",
    package="Django",
    versions=("5.0.6", "5.0.7", "5.0.8"),
    code_only=True,
    image_bytes=224 * 1024 * 1024,
    changed_block_fraction=0.01,
    small_files=10_000,
    small_max_bytes=16 * 1024,
    seed=20261207,
)
QUICK_SPEC = datasets.DatasetSpec(
    name="agents-quick",
    package="Django",
    versions=("5.0.6", "5.0.7", "5.0.8"),
    code_only=True,
    image_bytes=32 * 1024 * 1024,
    changed_block_fraction=0.01,
    small_files=2_000,
    small_max_bytes=16 * 1024,
    seed=20261207,
)
FINAL = {"COMPLETED", "PARTIAL", "FAILED", "ABORTED", "EXPIRED"}
BUCKET = "snowvault-store"
CLK_TCK = os.sysconf("SC_CLK_TCK")
GIB = 1024 * MIB
FLEET_FILES = 10
BATCH_FIX_ENV = "SNOWVAULT_BENCH_AGENT_BATCH_FIX"
PACKS_PER_CALL_ENV = "SNOWVAULT_BENCH_AGENT_PACKS_PER_CALL"
STORE_PUTS = "(to the store directly)"  # the counters' key of requests not to the server
MAX_BLOBS_PER_CALL = 256  # the server's AgentPutBlobs limit (interfaces/api/agent_actions.py)
QUIET = {"on": False}
"""``--quiet-server`` (agent runs only): the embedded worker polls its queue every
:data:`QUIET_WORKER_POLL` s and this script polls a job every :data:`QUIET_JOB_POLL` s,
and idle is measured for :data:`QUIET_IDLE_SECONDS` before the agent starts (an agent
running a job does not long-poll, so its waiting poll is no part of the server's idle
during the job; measured with it, idle over-subtracted ~0.02 CPU s per second of
job, most of the data's share in a long job): what is subtracted from the
server's CPU over a job (its idle loops, the script's polls) is then a few percent of
it instead of most, so the part the data causes is not lost in that subtraction's noise
(a job's wall time there grows with the agent's and the store's work, not the
server's)."""
QUIET_WORKER_POLL = 5.0
QUIET_JOB_POLL = 1.0
QUIET_IDLE_SECONDS = 30.0


def _job_poll() -> float:
    return QUIET_JOB_POLL if QUIET["on"] else POLL


# --------------------------------------------------------------------------- the agent wrapper


def agent_process(counters: Path, argv: list[str]) -> int:
    """Run ``snowvault <argv>`` (``agent run ...``) in this process, counting what its
    HTTP client sends and reads per action into ``counters`` (rewritten after every
    call). Every urllib3 request goes through ``PoolManager.request`` (the module-level
    ``urllib3.request`` too), so that is where the count is taken."""
    import urllib3

    from snowvault.interfaces.cli import main as cli

    endpoint = argv[argv.index("--endpoint") + 1] if "--endpoint" in argv else ""
    real = urllib3.PoolManager.request
    lock = threading.Lock()
    totals: dict[str, dict[str, int]] = {}

    def counting(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        body = kwargs.get("body") or b""
        headers = kwargs.get("headers") or {}
        if isinstance(body, bytes | bytearray | memoryview | str):
            size = len(body)
        else:  # streamed (a spooled pack's blocks): its declared length
            size = int(headers.get("Content-Length", 0))
        sent = len(method) + len(url) + 12 + size
        sent += sum(len(str(k)) + len(str(v)) + 4 for k, v in headers.items())
        received = 0
        try:
            resp = real(self, method, url, *args, **kwargs)
            received = len(resp.data or b"")
            return resp
        finally:
            action = url.rsplit("/", 1)[-1] if url.startswith(endpoint) else STORE_PUTS
            with lock:
                row = totals.setdefault(action, {"calls": 0, "sent": 0, "received": 0})
                row["calls"] += 1
                row["sent"] += sent
                row["received"] += received
                staged = counters.with_suffix(".tmp")
                staged.write_text(json.dumps(totals))
                os.replace(staged, counters)

    urllib3.PoolManager.request = counting  # type: ignore[method-assign]
    if os.environ.get(BATCH_FIX_ENV) == "1":
        cap_batches()
    if os.environ.get(PACKS_PER_CALL_ENV):  # --agent-packs-per-call: a variant to measure
        from snowvault.agent import store

        store.PACKS_PER_CALL = int(os.environ[PACKS_PER_CALL_ENV])
    return cli.main(argv)


PROFILE_ENV = "SNOWVAULT_BENCH_PROFILE_DIR"
"""``--profile-server DIR``: every server this run starts runs under
:func:`server_process`, which writes DIR/server-<port>.pstats (CPU time per thread)."""


def server_process(out: Path, argv: list[str]) -> int:
    """Run ``snowvault <argv>`` (``server ...``) in this process with every thread under
    cProfile timed by its own CPU time (``time.thread_time``: a thread waiting in a long
    poll or a lock costs nothing), the merged statistics rewritten to ``out`` every 5 s.
    Python 3.11 has no profiler for all threads, so every thread's start is wrapped."""
    import cProfile
    import pstats

    from snowvault.interfaces.cli import main as cli

    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def profiled() -> cProfile.Profile:
        prof = cProfile.Profile(time.thread_time)
        with lock:
            profiles.append(prof)
        return prof

    real_bootstrap = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]

    def bootstrap_profiled(self: threading.Thread) -> None:  # run() may be overridden
        prof = profiled()
        prof.enable()
        try:
            real_bootstrap(self)
        finally:
            prof.disable()

    class _Snapshot:  # what pstats reads, without disabling another thread's profiler
        def __init__(self, prof: cProfile.Profile) -> None:
            self.prof = prof
            self.stats: dict[Any, Any] = {}

        def create_stats(self) -> None:
            self.prof.snapshot_stats()
            self.stats = self.prof.stats  # type: ignore[attr-defined]

    def dump() -> None:
        while True:
            time.sleep(5)
            with lock:
                snaps = [_Snapshot(p) for p in profiles]
            try:
                stats = pstats.Stats(snaps[0])
                for snap in snaps[1:]:
                    stats.add(snap)
                stats.dump_stats(str(out) + ".tmp")
                os.replace(str(out) + ".tmp", out)
            except Exception as exc:  # a snapshot racing a thread's exit: next time
                log(f"profile dump: {exc!r}")

    # the dump thread first: its own merging (pstats) is not the server's work
    threading.Thread(target=dump, name="profile-dump", daemon=True).start()
    threading.Thread._bootstrap_inner = bootstrap_profiled  # type: ignore[attr-defined]
    main_prof = profiled()
    main_prof.enable()
    return cli.main(argv)


def cap_batches() -> None:
    """``--agent-batch-fix``: split an agent's upload batch into AgentPutBlobs calls of at
    most 256 blobs (the server's limit). The agent's store (snowvault/agent/store.py)
    bounds a batch by bytes only (2 MiB), so a tree of many small files sends more than
    256 small blobs in one call and its job FAILS ("Blobs must be a list of 1-256
    blobs."). Applied only when asked, in the agent process only, and said in the
    report."""
    from snowvault.agent import store

    original = store.RemoteBlobStore._flush_locked

    def flush_in_parts(self: Any) -> None:
        pending = self._pending
        if len(pending) <= MAX_BLOBS_PER_CALL or getattr(self._keys, "direct", False):
            original(self)
            return
        for start in range(0, len(pending), MAX_BLOBS_PER_CALL):
            part = pending[start : start + MAX_BLOBS_PER_CALL]
            self._pending, self._pending_bytes = part, sum(len(b[2]) for b in part)
            original(self)

    store.RemoteBlobStore._flush_locked = flush_in_parts  # type: ignore[method-assign]


def read_counters(path: Path) -> dict[str, dict[str, int]]:
    try:
        doc: dict[str, dict[str, int]] = json.loads(path.read_text())
        return doc
    except (FileNotFoundError, ValueError):
        return {}


def counter_delta(
    after: dict[str, dict[str, int]], before: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for action, row in after.items():
        old = before.get(action, {})
        diff = {k: v - old.get(k, 0) for k, v in row.items()}
        if diff["calls"]:
            out[action] = diff
    return out


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of ``pid`` (and of its children it has waited for)."""
    if pid is None:
        return 0.0
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return 0.0
    fields = text.rpartition(")")[2].split()
    return sum(int(x) for x in fields[11:15]) / CLK_TCK


# --------------------------------------------------------------------------- processes


class BenchServer(Server):
    """resources_bench's server, with the store (``regions``), the catalog and the
    embedded worker's poll interval chosen here."""

    def __init__(
        self,
        root: Path,
        allow: list[Path],
        store: str = "",
        catalog_url: str = "",
        store_env: dict[str, str] | None = None,
    ) -> None:
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
        if catalog_url:
            args += ["--catalog-url", catalog_url]
        _, out = run([*args, "--no-profile", "--json"], env=self.env, timeout=120)
        self.creds: dict[str, str] = json.loads(out.strip().splitlines()[-1])
        config_path = self.data_dir / "config.json"
        config = json.loads(config_path.read_text())
        # the embedded worker asks for work every 0.2 s (default 1 s), as an agent's
        # long poll answers at once: neither waits for its poll in these timings
        config["worker"].update(poll_seconds=QUIET_WORKER_POLL if QUIET["on"] else 0.2)
        if store:
            config["regions"][self.creds["region"]] = store
        config_path.write_text(json.dumps(config))
        self.log_path = root / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.agent_env = dict(self.env)  # without the store's credentials
        self.env |= store_env or {}
        self.storage = Path(config["regions"][self.creds["region"]])

    def start(self) -> None:
        """As resources_bench's, but under :func:`server_process` with ``--profile-server``."""
        profile_dir = os.environ.get(PROFILE_ENV)
        if not profile_dir:
            super().start()
            return
        out = Path(profile_dir) / f"server-{self.port}.pstats"
        self.launch(
            [sys.executable, str(Path(__file__).resolve()), "--server-process", str(out), "--"]
        )

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid if self.proc else None)

    def enroll(self, host: str) -> dict[str, str]:
        key: dict[str, str] = self.ext("EnrollAgent", {"Host": host})["AccessKey"]
        return key

    def register_on(self, host: str | None, name: str, source: Path) -> str:
        body: dict[str, Any] = {"ResourceType": "Directory", "Name": name, "Source": str(source)}
        if host:
            body["WorkerLabel"] = f"agent:{host}"
        return str(self.ext("RegisterResource", body)["ResourceArn"])

    def start_job(self, vault: str, arn: str) -> str:
        doc = self.backup.start_backup_job(BackupVaultName=vault, ResourceArn=arn, IamRoleArn=ROLE)
        return str(doc["BackupJobId"])

    def wait_job(self, job_id: str, timeout: float = 1800) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job: dict[str, Any] = self.backup.describe_backup_job(BackupJobId=job_id)
            if job["State"] in FINAL:
                return job
            if time.monotonic() > deadline:
                raise RuntimeError(f"job {job_id} still {job['State']} after {timeout} s")
            time.sleep(_job_poll())


class Agent:
    """One ``snowvault agent run`` process (under the counting wrapper)."""

    def __init__(self, sv: BenchServer, host: str, key: dict[str, str], allow: Path, root: Path):
        self.host = host
        self.counters = root / f"{host}.counters.json"
        self.log_path = root / f"{host}.log"
        env = sv.agent_env | {
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
            BATCH_FIX_ENV: os.environ.get(BATCH_FIX_ENV, "0"),
            PACKS_PER_CALL_ENV: os.environ.get(PACKS_PER_CALL_ENV, ""),
        }
        args = [
            sys.executable, str(Path(__file__).resolve()), "--agent-process", str(self.counters),
            "--", "agent", "run", "--endpoint", sv.endpoint, "--host", host,
            "--allow-path", str(allow), "--region", sv.creds["region"],
        ]  # fmt: skip
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)

    def wait_hello(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while "AgentHello" not in read_counters(self.counters):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"agent {self.host} did not start: {self.log_tail()}")
            time.sleep(0.1)

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def counts(self) -> dict[str, dict[str, int]]:
        return read_counters(self.counters)

    def peak_rss(self) -> int:
        """The agent process's peak resident set so far (VmHWM), bytes."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def log_tail(self) -> str:
        return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-5:])

    def job_line(self, job_id: str) -> str:
        """The agent's own summary line of a backup job (blobs uploaded / skipped); the
        agent writes it after the server completed the job, so wait for it a little."""
        deadline = time.monotonic() + 10
        while True:
            for line in self.log_path.read_text(errors="replace").splitlines():
                if job_id in line and "uploaded" in line:
                    return line.split(": ", 1)[-1]
            if time.monotonic() > deadline:
                return "(no summary line in the agent's log)"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


class Moto:
    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.s3 = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                self.s3.list_buckets()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.s3.create_bucket(Bucket=BUCKET)

    store_url = f"s3://{BUCKET}/vaults"

    @property
    def server_env(self) -> dict[str, str]:
        """How the server reaches the bucket. Not as query options of the location: a
        vault's storage URL is the location + "/ACCOUNT/NAME-xxxx", which after a query
        string would land in the last option's value (every vault the same prefix)."""
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }

    def bucket_bytes(self) -> int:
        total = 0
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            total += sum(int(o["Size"]) for o in page.get("Contents", []))
        return total

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)


def local_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                continue
    return total


# --------------------------------------------------------------------------- results


@dataclass
class JobRow:
    store: str
    runner: str  # "embedded worker" or "agent"
    phase: str  # "first" or "no change"
    seconds: float
    source_bytes: int
    server_cpu: float
    agent_cpu: float | None
    server_idle: float  # what the idle server spends in as long (polling loops)
    moto_cpu: float | None
    store_grew: int
    received: int  # bytes the server received from the agent (requests)
    direct: int  # bytes the agent sent to the store itself (presigned PUTs)
    put_blobs_bytes: int  # of which AgentPutBlobs requests
    calls: dict[str, int] = field(default_factory=dict)
    note: str = ""
    job_id: str = ""
    agent_peak_rss: int = 0
    """The agent process's peak RSS (VmHWM) after the job: its peak since it started."""
    server_polled: float = 0.0
    """What answering this script's own DescribeBackupJob polls (every POLL s) costs the
    server in as long, beyond idle (measured after the jobs: :func:`poll_rate`)."""


@dataclass
class FleetRow:
    agents: int
    jobs: int
    completed: int
    seconds: float
    server_cpu: float
    server_idle: float
    agents_cpu: float
    note: str = ""
    run: int = 1


@dataclass
class Results:
    jobs: list[JobRow] = field(default_factory=list)
    fleet: list[FleetRow] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def _per_gib(value: float, size: int) -> float:
    return value / (size / GIB) if size else 0.0


# --------------------------------------------------------------------------- throughput


def idle_rate(sv: BenchServer, seconds: float = 10.0) -> float:
    """CPU seconds per second the server spends with no job (the embedded worker's and
    the scheduler's polling loops, an agent's long poll): subtracted from a job's."""
    if QUIET["on"]:
        seconds = QUIET_IDLE_SECONDS
    before, start = sv.cpu(), time.perf_counter()
    time.sleep(seconds)
    return (sv.cpu() - before) / (time.perf_counter() - start)


def poll_rate(sv: BenchServer, job_id: str, idle: float, seconds: float = 10.0) -> float:
    """CPU seconds per second the server spends answering :meth:`BenchServer.wait_job`'s
    DescribeBackupJob every POLL s (of a finished job), beyond ``idle``: part of every
    job's server CPU that neither runner causes."""
    before, start = sv.cpu(), time.perf_counter()
    while time.perf_counter() - start < seconds:
        sv.backup.describe_backup_job(BackupJobId=job_id)
        time.sleep(_job_poll())
    return max(0.0, (sv.cpu() - before) / (time.perf_counter() - start) - idle)


def warm(path: Path) -> None:
    """Read every file once (the page cache cannot be dropped here)."""
    for root, _dirs, files in os.walk(path):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                while f.read(8 * MIB):
                    pass


def bench_throughput(
    res: Results,
    work: Path,
    store: str,
    live: Path,
    size: int,
    runners: tuple[str, ...] = ("embedded worker", "agent"),
) -> None:
    moto = Moto() if store == "s3" else None
    root = work / f"sv-{store}"
    shutil.rmtree(root, ignore_errors=True)
    sv = BenchServer(
        root,
        allow=[live.parent],
        store=moto.store_url if moto else "",
        store_env=moto.server_env if moto else None,
    )
    agent: Agent | None = None
    try:
        sv.start()

        def store_bytes() -> int:
            return moto.bucket_bytes() if moto else local_bytes(sv.storage)

        for vault in ("embedded", "agent"):
            sv.backup.create_backup_vault(BackupVaultName=vault)
        embedded_arn = sv.register_on(None, "tree", live)
        agent_arn = sv.register_on("agent-1", "tree-on-agent-1", live)
        key = sv.enroll("agent-1")
        if QUIET["on"]:  # an agent running a job does not long-poll: idle without one
            warm(live)
            idle = idle_rate(sv)
            res.facts[f"idle server (no agent), {store}"] = f"{idle:.3f} CPU s/s"
        agent = Agent(sv, "agent-1", key, live.parent, root)
        agent.wait_hello()
        if not QUIET["on"]:
            warm(live)
            idle = idle_rate(sv)
            res.facts[f"idle server, {store}"] = f"{idle:.3f} CPU s/s"
        for phase in ("first", "no change"):
            for runner, vault, arn in (
                ("embedded worker", "embedded", embedded_arn),
                ("agent", "agent", agent_arn),
            ):
                if runner not in runners:
                    continue
                use = agent if runner == "agent" else None
                row = _one_job(sv, use, moto, store, runner, phase, vault, arn, size, store_bytes)
                row.server_idle = idle * row.seconds
                res.jobs.append(row)
                last_job = row.job_id
                log(
                    f"  {store} {runner} {phase}: {row.seconds:.2f} s, "
                    f"{size / MIB / row.seconds:.1f} MiB/s, server {row.server_cpu:.1f} CPU s, "
                    f"agent {row.agent_cpu or 0:.1f}, moto {row.moto_cpu or 0:.1f}; store "
                    f"+{row.store_grew / MIB:.1f} MiB; received {row.received / MIB:.2f} MiB "
                    f"{row.note}"
                )
        polled = poll_rate(sv, last_job, idle)
        res.facts[f"the script's job polls, {store}"] = f"{polled:.3f} CPU s/s beyond idle"
        for row in res.jobs:
            if row.store == store:
                row.server_polled = polled * row.seconds
    finally:
        if agent is not None:
            agent.stop()
        sv.stop()
        if moto is not None:
            moto.stop()


def _one_job(
    sv: BenchServer,
    agent: Agent | None,
    moto: Moto | None,
    store: str,
    runner: str,
    phase: str,
    vault: str,
    arn: str,
    size: int,
    store_bytes: Any,
) -> JobRow:
    grew_before = store_bytes()
    counts_before = agent.counts() if agent else {}
    cpu_before = (sv.cpu(), agent.cpu() if agent else 0.0, moto.cpu() if moto else 0.0)
    start = time.perf_counter()
    job_id = sv.start_job(vault, arn)
    job = sv.wait_job(job_id)
    seconds = time.perf_counter() - start
    cpu_after = (sv.cpu(), agent.cpu() if agent else 0.0, moto.cpu() if moto else 0.0)
    if job["State"] != "COMPLETED":
        raise RuntimeError(f"{runner} backup {job['State']}: {job.get('StatusMessage')}")
    delta = counter_delta(agent.counts(), counts_before) if agent else {}
    note = agent.job_line(job_id) if agent else ""
    return JobRow(
        store=store,
        runner=runner,
        phase=phase,
        seconds=seconds,
        source_bytes=size,
        server_cpu=cpu_after[0] - cpu_before[0],
        agent_cpu=cpu_after[1] - cpu_before[1] if agent else None,
        server_idle=0.0,
        moto_cpu=cpu_after[2] - cpu_before[2] if moto else None,
        store_grew=store_bytes() - grew_before,
        received=sum(r["sent"] for a, r in delta.items() if a != STORE_PUTS),
        direct=delta.get(STORE_PUTS, {}).get("sent", 0),
        put_blobs_bytes=delta.get("AgentPutBlobs", {}).get("sent", 0),
        calls={a: r["calls"] for a, r in delta.items()},
        note=note,
        job_id=job_id,
        agent_peak_rss=agent.peak_rss() if agent else 0,
    )


# --------------------------------------------------------------------------- fleet


def make_fleet_tree(root: Path, count: int) -> list[Path]:
    """``count`` small directories of FLEET_FILES text files (1-8 KiB, seeded)."""
    rng = random.Random(13)
    dirs = []
    for i in range(count):
        d = root / f"r{i:04d}"
        d.mkdir(parents=True, exist_ok=True)
        for j in range(FLEET_FILES):
            size = rng.randint(1024, 8192)
            (d / f"f{j}.txt").write_bytes(datasets.text_bytes(rng, size))
        dirs.append(d)
    return dirs


def postgres_catalog(name: str) -> str:
    import psycopg

    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres") as conn:
        conn.autocommit = True
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def drop_postgres_catalog(name: str) -> None:
    import psycopg

    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres") as conn:
        conn.autocommit = True
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_fleet(
    res: Results, work: Path, agents: int, dirs: list[Path], catalog: str, backlog: bool
) -> None:
    root = work / f"fleet-{agents}"
    shutil.rmtree(root, ignore_errors=True)
    db = f"agent_bench_{os.getpid()}_{agents}"
    url = postgres_catalog(db) if catalog == "postgres" else ""
    sv = BenchServer(root, allow=[dirs[0].parent], catalog_url=url)
    procs: list[Agent] = []
    try:
        sv.start()
        sv.backup.create_backup_vault(BackupVaultName="fleet")
        hosts = [f"agent-{n + 1}" for n in range(agents)]
        keys = {h: sv.enroll(h) for h in hosts}
        arns = [sv.register_on(hosts[i % agents], d.name, d) for i, d in enumerate(dirs)]
        if backlog:  # every job waits in CREATED, then the agents start and drain them
            submit = time.perf_counter()
            for arn in arns:
                sv.start_job("fleet", arn)
            submitted = time.perf_counter() - submit
            idle = idle_rate(sv, 5.0)
            cpu_before = sv.cpu(), 0.0
            start = time.perf_counter()
            procs = [Agent(sv, h, keys[h], dirs[0].parent, root) for h in hosts]
        else:  # the agents are up, then the jobs are started as fast as boto3 sends them
            procs = [Agent(sv, h, keys[h], dirs[0].parent, root) for h in hosts]
            for p in procs:
                p.wait_hello()
            idle = idle_rate(sv, 5.0)
            cpu_before = sv.cpu(), sum(p.cpu() for p in procs)
            start = time.perf_counter()
            for arn in arns:
                sv.start_job("fleet", arn)
            submitted = time.perf_counter() - start
        log(f"  fleet {agents}: {len(arns)} jobs started in {submitted:.1f} s")
        states: dict[str, int] = {}
        deadline = time.monotonic() + 1200
        while time.monotonic() < deadline:
            states = {}
            pages = sv.backup.get_paginator("list_backup_jobs").paginate(ByBackupVaultName="fleet")
            for page in pages:
                for job in page["BackupJobs"]:
                    states[job["State"]] = states.get(job["State"], 0) + 1
            if sum(n for s, n in states.items() if s in FINAL) >= len(arns):
                break
            time.sleep(0.5)
        seconds = time.perf_counter() - start
        cpu_after = sv.cpu(), sum(p.cpu() for p in procs)
        row = FleetRow(
            agents=agents,
            jobs=len(arns),
            completed=states.get("COMPLETED", 0),
            seconds=seconds,
            server_cpu=cpu_after[0] - cpu_before[0],
            server_idle=idle * seconds,
            agents_cpu=cpu_after[1] - cpu_before[1],
            note=", ".join(
                [f"{s} {n}" for s, n in sorted(states.items()) if s != "COMPLETED"]
                + [f"{len(arns)} StartBackupJob calls took {submitted:.1f} s"]
            ),
        )
        res.fleet.append(row)
        log(
            f"  fleet {agents}: {row.completed}/{row.jobs} COMPLETED in {seconds:.1f} s = "
            f"{60 * row.completed / seconds:.0f} jobs/min; server {row.server_cpu:.1f} CPU s, "
            f"agents {row.agents_cpu:.1f} {row.note}"
        )
    finally:
        for p in procs:  # all at once: each finishes its long poll (up to 20 s) first
            if p.proc.poll() is None:
                p.proc.terminate()
        sv.stop()  # which ends those polls
        for p in procs:
            p.stop()
        if catalog == "postgres":
            drop_postgres_catalog(db)


# --------------------------------------------------------------------------- report


def _job_row(r: JobRow) -> str:
    rate = r.source_bytes / MIB / r.seconds
    agent = "-" if r.agent_cpu is None else f"{r.agent_cpu:.1f}"
    moto = "-" if r.moto_cpu is None else f"{r.moto_cpu:.1f}"
    received = "0 (reads the tree from disk)" if r.runner != "agent" else f"{r.received / MIB:.2f}"
    per_gib = "-" if r.runner != "agent" else f"{_per_gib(r.received, r.source_bytes) / MIB:.1f}"
    net = max(0.0, r.server_cpu - r.server_idle)
    net_polls = max(0.0, net - r.server_polled)
    direct = "-" if r.runner != "agent" else f"{r.direct / MIB:.2f}"
    rss = "-" if r.runner != "agent" else f"{r.agent_peak_rss / MIB:.0f}"
    return (
        f"| {r.store} | {r.runner} | {r.phase} | {r.seconds:.2f} | {rate:.1f} | "
        f"{r.server_cpu:.2f} | {net:.2f} | {_per_gib(net, r.source_bytes):.2f} | "
        f"{_per_gib(net_polls, r.source_bytes):.2f} | {agent} | {rss} | "
        f"{moto} | {r.store_grew / MIB:.1f} | {received} | {per_gib} | {direct} |"
    )


def _fleet_row(r: FleetRow) -> str:
    per_min = 60 * r.completed / r.seconds if r.seconds else 0.0
    net = max(0.0, r.server_cpu - r.server_idle)
    per_job = net / r.completed if r.completed else 0.0
    return (
        f"| {r.run} | {r.agents} | {r.jobs} | {r.completed} | {r.seconds:.1f} | {per_min:.0f} | "
        f"{r.server_cpu:.1f} | {1000 * per_job:.0f} | {r.agents_cpu:.1f} | {r.note} |"
    )


def _fleet_medians(rows: list[FleetRow]) -> list[str]:
    """Median jobs/min per number of agents, when there are several runs."""
    if max((r.run for r in rows), default=1) < 2:
        return []
    out = ["", "Median jobs/min over the runs:"]
    for n in sorted({r.agents for r in rows}):
        rates = [60 * r.completed / r.seconds for r in rows if r.agents == n and r.seconds]
        out.append(f"- {n} agent(s): {statistics.median(rates):.0f} ({len(rates)} runs)")
    return out


def report(res: Results, meta: dict[str, Any]) -> str:
    lines = [
        f"# Agents: throughput beside the embedded worker, jobs per minute ({meta['date']})",
        "",
        f"- command: `{meta['command']}`",
        f"- date: {meta['date']}; commit {meta['commit']}",
        f"- load average (1/5/15 min) before: {meta['load_before']}; after: {meta['load_after']}",
        f"- machine: {meta['machine']}",
        f"- versions: {meta['versions']}",
        f"- agent code: {meta['agent']}",
        f"- total wall time: {meta['wall']:.0f} s",
        f"- facts: {', '.join(f'{k}: {v}' for k, v in res.facts.items())}",
        "",
    ]
    if res.jobs:
        lines += [
            "## Throughput: one tree, embedded worker vs one agent process",
            "",
            "CPU s = user + system seconds of that process over the job (/proc/PID/stat); "
            "net of idle = less what the idle server spends in as long (facts: idle "
            "server); less polls = also less what this script's own DescribeBackupJob "
            "polls cost it in as long (facts: the script's job polls); received = HTTP "
            "requests (line, headers, body) the agent sent the server.",
            "",
            "| store | runner | phase | s | MiB/s | server CPU s | net of idle | net CPU s / GiB "
            "| net, less polls, s / GiB | agent CPU s | agent peak RSS MiB | moto CPU s "
            "| store grew MiB | server received MiB | received MiB / GiB "
            "| agent sent the store MiB |",
            "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
            "| ---: | ---: | ---: | ---: |",
            *map(_job_row, res.jobs),
            "",
            "Agent calls per job and the agent's own summary line:",
            "",
        ]
        for r in res.jobs:
            if r.runner == "agent":
                calls = ", ".join(f"{a} {n}" for a, n in sorted(r.calls.items()))
                lines.append(
                    f"- {r.store} {r.phase}: {calls}; AgentPutBlobs requests "
                    f"{r.put_blobs_bytes / MIB:.2f} MiB; sent to the store directly "
                    f'{r.direct / MIB:.2f} MiB; "{r.note}"'
                )
        lines.append("")
    if res.fleet:
        lines += [
            "## Fleet: jobs per minute with 1, 2, 4 agents",
            "",
            "| run | agents | jobs | completed | s | jobs/min | server CPU s "
            "| net server CPU ms / job "
            "| agents' CPU s (start-up included in backlog mode) | notes |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
            *map(_fleet_row, res.fleet),
            *_fleet_medians(res.fleet),
            "",
        ]
    if res.errors:
        lines += ["## Errors", "", *(f"- {k}: {v}" for k, v in res.errors.items()), ""]
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) > 3 and sys.argv[1] == "--agent-process" and sys.argv[3] == "--":
        return agent_process(Path(sys.argv[2]), sys.argv[4:])
    if len(sys.argv) > 3 and sys.argv[1] == "--server-process" and sys.argv[3] == "--":
        return server_process(Path(sys.argv[2]), sys.argv[4:])
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small tree and 40 fleet jobs")
    parser.add_argument("--only", default="throughput,fleet")
    parser.add_argument("--stores", default="local,s3")
    parser.add_argument("--agents", default="1,2,4")
    parser.add_argument(
        "--src",
        default="HEAD",
        metavar="COMMIT",
        help="run snowvault's src/ as of this commit (extracted into the work dir; "
        "'worktree': the work tree as it is)",
    )
    parser.add_argument("--fleet-jobs", type=int, default=None)
    parser.add_argument(
        "--profile-server",
        type=Path,
        default=None,
        metavar="DIR",
        help="run every server under cProfile (CPU time per thread): DIR/server-<port>.pstats",
    )
    parser.add_argument(
        "--agent-batch-fix",
        action="store_true",
        help="agents send at most 256 blobs per upload call (see cap_batches)",
    )
    parser.add_argument("--fleet-catalog", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--fleet-repeat", type=int, default=1, help="runs of the fleet curve")
    parser.add_argument(
        "--fleet-start",
        choices=("backlog", "live"),
        default="backlog",
        help="backlog: all jobs created, then the agents started; live: agents up first",
    )
    parser.add_argument("--workdir", type=Path, default=REPO_ROOT / "benchmarks/work/agents")
    parser.add_argument(
        "--dataset-dir",
        type=Path,
        default=REPO_ROOT / "benchmarks/work",
        help="where the tree is built and kept (and Django sdists downloaded)",
    )
    parser.add_argument("--results-dir", type=Path, default=REPO_ROOT / "benchmarks/results")
    parser.add_argument(
        "--results-name",
        default=None,
        metavar="NAME",
        help="the report's file name in the results dir (default agents-YYYYMMDD.md)",
    )
    parser.add_argument(
        "--image-mib",
        type=int,
        default=None,
        metavar="N",
        help="the tree's disk-image file is N MiB instead of 224 (a second data size: the "
        "server's CPU per additional GiB is the slope between two sizes)",
    )
    parser.add_argument(
        "--agent-packs-per-call",
        type=int,
        default=None,
        metavar="N",
        help="agents presign and commit N direct packs per call instead of the shipped "
        "agent/store.py PACKS_PER_CALL (set in the agent process only; said in the report)",
    )
    parser.add_argument(
        "--quiet-server",
        action="store_true",
        help="with --runners agent: the embedded worker polls every 5 s, jobs are polled "
        "every 1 s, idle measured for 30 s (see QUIET)",
    )
    parser.add_argument(
        "--runners",
        default="embedded,agent",
        help="throughput runners: embedded, agent or both (default)",
    )
    args = parser.parse_args()
    if args.quiet_server and "embedded" in args.runners.split(","):
        parser.error("--quiet-server is for --runners agent (the embedded worker polls slowly)")
    QUIET["on"] = args.quiet_server
    only = set(args.only.split(","))
    fleet_jobs = args.fleet_jobs or (40 if args.quick else 200)
    os.environ[BATCH_FIX_ENV] = "1" if args.agent_batch_fix else "0"
    os.environ[PACKS_PER_CALL_ENV] = str(args.agent_packs_per_call or "")
    if args.profile_server is not None:
        args.profile_server.mkdir(parents=True, exist_ok=True)
        os.environ[PROFILE_ENV] = str(args.profile_server.resolve())
    started = time.perf_counter()
    load_before = os.getloadavg()
    now = dt.datetime.now(dt.UTC)
    work: Path = args.workdir
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    commit = use_src(args.src, work)
    res = Results()
    if "throughput" in only:
        try:
            spec = QUICK_SPEC if args.quick else SPEC
            if args.image_mib:
                spec = dataclasses.replace(
                    spec, name=f"{spec.name}-img{args.image_mib}", image_bytes=args.image_mib * MIB
                )
            names = {"embedded": "embedded worker", "agent": "agent"}
            runners = tuple(names[r] for r in args.runners.split(","))
            dataset = datasets.build_dataset(spec, args.dataset_dir, log)
            live = work / "data" / "live"
            datasets.prepare_live_tree(dataset, live)
            size = datasets.tree_bytes(live)
            res.facts["tree"] = f"{size / MIB:.1f} MiB in {sum(1 for _ in live.rglob('*'))} entries"
            for store in args.stores.split(","):
                log(f"== throughput, {store} store")
                try:
                    bench_throughput(res, work, store, live, size, runners)
                except Exception as exc:  # recorded in the report
                    res.errors[f"throughput {store}"] = _error(exc)
        except Exception as exc:
            res.errors["throughput"] = _error(exc)
    if "fleet" in only:
        dirs = make_fleet_tree(work / "fleet-data", fleet_jobs)
        res.facts["fleet"] = (
            f"{fleet_jobs} Directory resources of {FLEET_FILES} files (1-8 KiB), "
            f"{args.fleet_catalog} catalog, local store, start: {args.fleet_start}"
        )
        for run_no in range(1, args.fleet_repeat + 1):  # interleaved: 1, 2, 4, 1, 2, 4...
            for n in map(int, args.agents.split(",")):
                log(f"== fleet, {n} agent(s), run {run_no}")
                try:
                    backlog = args.fleet_start == "backlog"
                    bench_fleet(res, work, n, dirs, args.fleet_catalog, backlog)
                    res.fleet[-1].run = run_no
                except Exception as exc:
                    res.errors[f"fleet {n} run {run_no}"] = _error(exc)
    meta = {
        "command": shlex.join([".venv/bin/python", "benchmarks/agent_bench.py", *sys.argv[1:]]),
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "load_before": " / ".join(f"{x:.2f}" for x in load_before),
        "load_after": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
        "machine": f"{len(os.sched_getaffinity(0))} CPUs, Linux {platform.release()}, "
        f"Python {platform.python_version()}",
        "versions": "; ".join([version([SNOWVAULT, "--version"]), "moto " + _moto_version()]),
        "wall": time.perf_counter() - started,
        "agent": "with --agent-batch-fix: upload batches split into calls of <= 256 blobs "
        "in the agent process (agent/store.py bounds them by bytes only)"
        if args.agent_batch_fix
        else f"PACKS_PER_CALL = {args.agent_packs_per_call} (set in the agent process)"
        if args.agent_packs_per_call
        else "as shipped",
    }
    text = report(res, meta)
    print(text)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    suffix = "-quick" if args.quick else ""
    name = args.results_name or f"agents-{now:%Y%m%d}{suffix}.md"
    (args.results_dir / name).write_text(text + "\n")
    doc = {
        "meta": meta,
        "jobs": [asdict(r) for r in res.jobs],
        "fleet": [asdict(r) for r in res.fleet],
    }
    print(json.dumps(doc | {"facts": res.facts, "errors": res.errors}))
    return 1 if res.errors else 0


def use_src(commit: str, work: Path) -> str:
    """Point every snowvault process this run starts (servers, agents) at ``commit``'s
    src/: a shared work tree may hold others' half-done edits. Its description."""
    if commit == "worktree":
        return commit_id() + ", the work tree as it was"
    rev = subprocess.run(
        ["git", "rev-parse", "--short", commit],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", rev, "src"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(work)], input=archive, check=True)
    os.environ["PYTHONPATH"] = str(work / "src")  # before the venv's editable path
    return f"{rev} (src/ of that commit, extracted; the work tree's edits not used)"


def _moto_version() -> str:
    from importlib.metadata import version as dist_version

    return dist_version("moto")


def _error(exc: BaseException) -> str:
    log(traceback.format_exc())
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:600]}"


if __name__ == "__main__":
    sys.exit(main())
