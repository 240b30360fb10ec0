"""Side-by-side benchmark of snowvault's vault engine against restic and borg.

One run builds (or reuses) a deterministic dataset (benchmarks/datasets.py), then for
each phase -- initial backup, incremental backup, no-change backup, full restore -- runs
every selected tool against its own fresh repository (with ``--repeat N`` the order is
rotated: repetition i starts at the i-th tool, so no tool always runs right after the
same other one; ``--order fixed`` keeps the --tools order), measuring wall seconds,
throughput and the peak RSS of the child process (``os.wait4`` rusage). Restores are
checked byte for byte against the source tree.

A tool that fails (missing binary, non-zero exit, bad output) gets its error recorded in
the table; the run goes on. Output: a Markdown report on stdout and in
benchmarks/results/engine-YYYYMMDD.md, then one line of JSON on stdout.

With ``--repeat N`` the whole run (fresh repositories each time) is done N times and
every figure is the median of the N; with ``--cpus 0`` or ``--cpus 0,1`` every tool
runs under ``taskset -c`` (to show one core beside two). The targets (issue 15) are time
ratios to restic in the same run, plus snowvault's CPU seconds per wall second in the
initial backup (both cores busy); each is printed "met" or "not met".

Usage: python benchmarks/engine_bench.py [--quick | --set full|quick|media]
       [--tools restic,borg,snowvault] [--repeat N] [--cpus LIST] [--workdir DIR]
       [--results-dir DIR] [--timeout SECONDS] [--order rotate|fixed]

Depends only on the standard library and the tools' command lines; it must not import
snowvault (the engine is measured through its CLI contract, like the others).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import datasets

REPO_ROOT = Path(__file__).resolve().parent.parent
PHASES = ("initial", "incremental", "nochange", "restore")
PHASE_TITLES = {
    "initial": "initial backup",
    "incremental": "incremental backup",
    "nochange": "no-change backup",
    "restore": "full restore",
}
TOOL_ORDER = (
    "restic",
    "borg",
    "snowvault",
    "snowvault-single",
    "snowvault-walk",
    "snowvault-auto",
    "snowvault-procs",
)
PASSWORD = "engine-bench-password"  # a throwaway repository password, not a secret
MIB = 1024 * 1024


def log(message: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    print(f"[{stamp}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- measuring


@dataclass
class Run:
    """One measured child process."""

    argv: list[str]
    seconds: float
    max_rss_kib: int
    cpu_seconds: float  # user + system
    stdout_path: Path
    error: str | None
    group_rss_kib: int = 0  # the largest sampled sum over the tool's processes


# Linux keeps a process's RSS high-water mark across execve, so a tool forked straight
# from this (large) Python process would report at least our own peak. /usr/bin/time
# forks the tool from a small process and reports that child's ru_maxrss.
TIME_BIN = "/usr/bin/time"
RSS_SOURCE = (
    "/usr/bin/time %M %U %S (tool forked from a small process)"
    if os.access(TIME_BIN, os.X_OK)
    else "os.wait4 ru_maxrss (no /usr/bin/time: includes the harness's own peak, too high)"
)


def _error_text(code: int, stderr_path: Path, timed_out: bool) -> str:
    if timed_out:
        return "timed out"
    lines = [ln.strip() for ln in stderr_path.read_text(errors="replace").splitlines()]
    tail = " / ".join(ln for ln in lines if ln)[-300:]
    return f"exit {code}: {tail}" if tail else f"exit {code}"


def _time_figures(path: Path) -> tuple[int, float]:
    """Peak RSS KiB and user+sys seconds from the "%M %U %S" line /usr/bin/time wrote."""
    lines = path.read_text().splitlines() if path.exists() else []
    for line in reversed(lines):  # a "Command exited with ..." line may come first
        fields = line.split()
        if len(fields) == 3 and fields[0].isdigit():
            return int(fields[0]), float(fields[1]) + float(fields[2])
    return 0, 0.0


CPUS: str | None = None
"""``taskset -c`` list every tool runs under (None: all cores)."""


GROUP_SAMPLE_SECONDS = 0.25


class GroupRss:
    """Samples the summed RSS of every process in one process group (the tool and any
    worker processes it starts): /usr/bin/time's %M is the largest *single* process.
    Shared pages (libraries) count once per process, so this is an upper bound."""

    def __init__(self, pgid: int) -> None:
        self.pgid = pgid
        self.peak_kib = 0
        self._stop = threading.Event()
        self._page_kib = os.sysconf("SC_PAGE_SIZE") // 1024
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> int:
        total = 0
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                stat = Path(f"/proc/{name}/stat").read_text()
                fields = stat[stat.rindex(")") + 2 :].split()
                if int(fields[2]) != self.pgid:  # pgrp
                    continue
                total += int(Path(f"/proc/{name}/statm").read_text().split()[1])
            except (OSError, ValueError, IndexError):
                continue
        return total * self._page_kib

    def _run(self) -> None:
        while not self._stop.wait(GROUP_SAMPLE_SECONDS):
            self.peak_kib = max(self.peak_kib, self._sample())

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak_kib


def run_measured(
    argv: list[str], *, env: dict[str, str], cwd: Path, logs: Path, timeout: float
) -> Run:
    """Run ``argv`` with output to files; wall time by perf_counter, peak RSS as above."""
    stdout_path, stderr_path = logs.with_suffix(".out"), logs.with_suffix(".err")
    rss_path = logs.with_suffix(".rss")
    logs.parent.mkdir(parents=True, exist_ok=True)
    if shutil.which(argv[0], path=env.get("PATH")) is None:
        return Run(argv, 0.0, 0, 0.0, stdout_path, f"cannot start {argv[0]}: not found")
    use_time = os.access(TIME_BIN, os.X_OK)
    wrapped = [TIME_BIN, "-f", "%M %U %S", "-o", str(rss_path), *argv] if use_time else argv
    if CPUS is not None:
        wrapped = ["taskset", "-c", CPUS, *wrapped]
    os.sync()  # the previous tool's writes reach the disk first, not during this one's fsyncs
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(
                wrapped,
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,  # so a timeout can kill the whole group
            )
        except OSError as exc:
            return Run(argv, 0.0, 0, 0.0, stdout_path, f"cannot start {argv[0]}: {exc.strerror}")
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, expire)
        timer.start()
        group = GroupRss(proc.pid)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
            group_kib = group.stop()
        seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code  # already reaped by wait4
    error = None if code == 0 else _error_text(code, stderr_path, expired.is_set())
    if use_time:
        rss, cpu = _time_figures(rss_path)
    else:
        rss, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    return Run(argv, seconds, rss, cpu, stdout_path, error, group_kib)


def disk_usage(path: Path) -> int:
    """Bytes allocated below ``path``, as ``du`` counts them (st_blocks)."""
    total = 0
    for folder, _, files in os.walk(path):
        total += os.lstat(folder).st_blocks * 512
        for name in files:
            total += os.lstat(os.path.join(folder, name)).st_blocks * 512
    return total


# --------------------------------------------------------------------------- tools


class Tool:
    """A backup tool driven through its command line, with its own repo and home."""

    name = "tool"

    def __init__(self, base: Path, timeout: float) -> None:
        self.base = base / self.name
        self.repo = self.base / "repo"
        self.home = self.base / "home"
        self.logs = self.base / "logs"
        self.timeout = timeout
        self.home.mkdir(parents=True, exist_ok=True)

    def env(self) -> dict[str, str]:
        keep = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("RESTIC_", "BORG_", "SNOWVAULT_", "XDG_"))
        }
        keep.update(HOME=str(self.home), XDG_CACHE_HOME=str(self.home / "cache"))
        keep.update(XDG_CONFIG_HOME=str(self.home / "config"), LC_ALL="C.UTF-8")
        return keep

    def run(self, argv: list[str], label: str, cwd: Path | None = None) -> Run:
        return run_measured(
            argv, env=self.env(), cwd=cwd or self.base, logs=self.logs / label, timeout=self.timeout
        )

    def version(self) -> str:
        try:
            done = subprocess.run(
                self.version_argv(), env=self.env(), capture_output=True, text=True, timeout=60
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"unavailable ({exc})"
        text = (done.stdout or done.stderr).strip().splitlines()
        first = text[0] if text else ""
        return first if done.returncode == 0 else f"unavailable (exit {done.returncode}) {first}"

    def version_argv(self) -> list[str]:
        raise NotImplementedError

    def init(self) -> Run:
        raise NotImplementedError

    def backup(self, source: Path, label: str) -> Run:
        raise NotImplementedError

    def restore(self, target: Path) -> Run:
        raise NotImplementedError

    def stats(self) -> Any:
        return None


class Restic(Tool):
    name = "restic"

    def env(self) -> dict[str, str]:
        env = super().env()
        env["RESTIC_PASSWORD"] = PASSWORD
        return env

    def base_argv(self) -> list[str]:
        return ["restic", "--repo", str(self.repo), "--cache-dir", str(self.home / "restic")]

    def version_argv(self) -> list[str]:
        return ["restic", "version"]

    def init(self) -> Run:
        return self.run([*self.base_argv(), "init", "--repository-version", "2"], "init")

    def backup(self, source: Path, label: str) -> Run:
        return self.run([*self.base_argv(), "backup", "--host", "bench", str(source)], label)

    def restore(self, target: Path) -> Run:
        argv = [*self.base_argv(), "restore", "latest", "--target", str(target)]
        return self.run(argv, "restore")


class Borg(Tool):
    name = "borg"

    def __init__(self, base: Path, timeout: float) -> None:
        super().__init__(base, timeout)
        self.last_archive = ""

    def env(self) -> dict[str, str]:
        env = super().env()
        borg_home = self.home / "borg"
        env.update(
            BORG_PASSPHRASE=PASSWORD,
            BORG_BASE_DIR=str(borg_home),
            BORG_CACHE_DIR=str(borg_home / "cache"),
            BORG_CONFIG_DIR=str(borg_home / "config"),
            BORG_SECURITY_DIR=str(borg_home / "security"),
            BORG_KEYS_DIR=str(borg_home / "keys"),
            BORG_DISPLAY_PASSPHRASE="no",
            BORG_RELOCATED_REPO_ACCESS_IS_OK="yes",
            BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="yes",
        )
        return env

    def version_argv(self) -> list[str]:
        return ["borg", "--version"]

    def init(self) -> Run:
        return self.run(["borg", "init", "--encryption=repokey-blake2", str(self.repo)], "init")

    def backup(self, source: Path, label: str) -> Run:
        argv = ["borg", "create", "--compression", "zstd,3", f"{self.repo}::{label}", str(source)]
        result = self.run(argv, label)
        if result.error is None:
            self.last_archive = label
        return result

    def restore(self, target: Path) -> Run:
        return self.run(["borg", "extract", f"{self.repo}::{self.last_archive}"], "restore", target)


class Snowvault(Tool):
    name = "snowvault"

    def __init__(self, base: Path, timeout: float) -> None:
        super().__init__(base, timeout)
        self.exe = str(REPO_ROOT / ".venv" / "bin" / "snowvault")
        self.recovery_points: list[str] = []
        self.pycache = base.parent / "pycache"

    def env(self) -> dict[str, str]:
        env = super().env()
        env["SNOWVAULT_PASSWORD"] = PASSWORD
        # Installed, snowvault runs from compiled bytecode (pip compiles it; borg's
        # Debian package ships it). This checkout is an editable install and the
        # environment may say PYTHONDONTWRITEBYTECODE, which would make every timed
        # command compile ~70 modules again (~0.25 s each time): keep the bytecode,
        # outside the source tree.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(self.pycache)
        return env

    def version_argv(self) -> list[str]:
        return [self.exe, "--version"]

    def init(self) -> Run:
        compile_all = [sys.executable, "-m", "compileall", "-q", str(REPO_ROOT / "src")]
        subprocess.run(compile_all, env=self.env(), capture_output=True, timeout=600)
        return self.run([self.exe, "repo", "init", "--repo", str(self.repo)], "init")

    def backup(self, source: Path, label: str) -> Run:
        argv = [self.exe, "repo", "backup", "--repo", str(self.repo), str(source), "--json"]
        result = self.run(argv, label)
        if result.error is None:
            point = _summary_id(result.stdout_path)
            if point is None:
                result.error = "backup printed no JSON summary line with an 'id'"
            else:
                self.recovery_points.append(point)
        return result

    def restore(self, target: Path) -> Run:
        argv = [self.exe, "repo", "restore", "--repo", str(self.repo), "latest", str(target)]
        return self.run(argv, "restore")

    def stats(self) -> Any:
        result = self.run([self.exe, "repo", "stats", "--repo", str(self.repo), "--json"], "stats")
        if result.error is not None:
            return {"error": result.error}
        text = result.stdout_path.read_text(errors="replace").strip()
        for candidate in (text, text.splitlines()[-1] if text else ""):
            try:
                return json.loads(candidate)
            except json.JSONDecodeError:
                continue
        return {"error": "stats printed no JSON"}


class SnowvaultSingle(Snowvault):
    """snowvault's single-process reference path (no walk workers, no content workers)."""

    name = "snowvault-single"

    def env(self) -> dict[str, str]:
        env = super().env()
        env["SNOWVAULT_ENGINE_WALKERS"] = "0"
        env["SNOWVAULT_ENGINE_PROCESSES"] = "0"
        return env


class SnowvaultWalkers(Snowvault):
    """snowvault with one walk worker (SNOWVAULT_ENGINE_WALKERS=1): subtrees walked,
    read, chunked and packed by a worker process and by the backup's own process
    (engine/walk_workers.py); two processes for two cores."""

    name = "snowvault-walk"

    def env(self) -> dict[str, str]:
        env = super().env()
        env["SNOWVAULT_ENGINE_WALKERS"] = "1"
        return env


class SnowvaultAuto(Snowvault):
    """snowvault with the walk workers started lazily (SNOWVAULT_ENGINE_WALKERS=auto):
    one worker per core but one, launched once the backup has read 256 MiB of files."""

    name = "snowvault-auto"

    def env(self) -> dict[str, str]:
        env = super().env()
        env["SNOWVAULT_ENGINE_WALKERS"] = "auto"
        return env


class SnowvaultProcesses(Snowvault):
    """snowvault with its worker-process path on (SNOWVAULT_ENGINE_PROCESSES=2): file
    contents read, chunked, hashed, compressed and sealed in two worker processes."""

    name = "snowvault-procs"

    def env(self) -> dict[str, str]:
        env = super().env()
        env["SNOWVAULT_ENGINE_PROCESSES"] = "2"
        env["SNOWVAULT_ENGINE_WALKERS"] = "0"  # content workers run only without walkers
        return env


def _summary_id(stdout_path: Path) -> str | None:
    lines = [ln for ln in stdout_path.read_text(errors="replace").splitlines() if ln.strip()]
    if not lines:
        return None
    try:
        summary = json.loads(lines[-1])
    except json.JSONDecodeError:
        return None
    point = summary.get("id") if isinstance(summary, dict) else None
    return str(point) if point else None


TOOL_CLASSES: dict[str, type[Tool]] = {
    "restic": Restic,
    "borg": Borg,
    "snowvault": Snowvault,
    "snowvault-single": SnowvaultSingle,
    "snowvault-walk": SnowvaultWalkers,
    "snowvault-auto": SnowvaultAuto,
    "snowvault-procs": SnowvaultProcesses,
}


# --------------------------------------------------------------------------- phases


@dataclass
class PhaseResult:
    """One cell row of the table: a tool in a phase."""

    tool: str
    phase: str
    data_bytes: int
    seconds: float | None = None
    cpu_seconds: float | None = None
    peak_rss_mib: float | None = None
    group_rss_mib: float | None = None  # sampled sum over the tool's processes
    error: str | None = None
    verified: bool | None = None
    repo_bytes: int | None = None

    @property
    def mib_per_s(self) -> float | None:
        if self.seconds is None or self.error is not None or self.seconds <= 0:
            return None
        return self.data_bytes / MIB / self.seconds


@dataclass
class Bench:
    """Everything a run measured, in run order. ``tools`` in the report's order;
    ``order`` is the order they ran in within each phase (rotated per repetition)."""

    tools: list[Tool]
    results: list[PhaseResult] = field(default_factory=list)
    broken: dict[str, str] = field(default_factory=dict)  # tool -> why it is skipped
    order: list[Tool] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.order = self.order or list(self.tools)

    def record(self, tool: Tool, phase: str, data_bytes: int, run: Run | None) -> PhaseResult:
        row = PhaseResult(tool.name, phase, data_bytes)
        if run is None:
            row.error = f"skipped: {self.broken[tool.name]}"
        else:
            row.seconds = run.seconds
            row.cpu_seconds = run.cpu_seconds
            row.peak_rss_mib = run.max_rss_kib / 1024
            # a phase over before the sampler's first look (a 0.2 s no-change backup of
            # one process) has no sampled sum: its largest process's own peak stands in
            row.group_rss_mib = run.group_rss_kib / 1024 if run.group_rss_kib else row.peak_rss_mib
            row.error = run.error
        self.results.append(row)
        state = row.error or f"{row.seconds:.1f}s, {row.mib_per_s:.1f} MiB/s"
        log(f"{phase:<11} {tool.name:<9} {state}")
        return row

    def get(self, tool: str, phase: str) -> PhaseResult | None:
        for row in self.results:
            if row.tool == tool and row.phase == phase:
                return row
        return None


def rotated(names: list[str], start: int) -> list[str]:
    """``names`` starting at the ``start``-th (mod their number): repetition i of a run
    starts at tool i, so no tool always follows the same one (see ``--order``)."""
    k = start % len(names) if names else 0
    return names[k:] + names[:k]


def init_repos(bench: Bench) -> None:
    for tool in bench.order:
        run = tool.init()
        if run.error is not None:
            bench.broken[tool.name] = f"init failed ({run.error})"
            log(f"init        {tool.name:<9} {run.error}")


WARM_BUFFER = 1024 * 1024


def warm(root: Path) -> int:
    """Read every regular file below ``root`` into the page cache (no hashing); bytes read.

    Called before each tool's timed command, so every tool starts with its input cached:
    borg 1.2 drops the pages it has read (``posix_fadvise(DONTNEED)``), so without this
    the tool after borg read the tree from disk (the initial backup of the full set took
    16.4-16.8 s after borg and 7.9 s after the harness's own warm-up read, helper B's
    finding). On a cached tree this costs ~1-2 s of the harness's time, not the tool's.
    """
    buf = bytearray(WARM_BUFFER)
    total = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                continue  # a symlink or an unreadable file: the tools meet it as they are
            try:
                while n := os.readv(fd, [buf]):
                    total += n
            finally:
                os.close(fd)
    return total


def backup_phase(bench: Bench, phase: str, live: Path, data_bytes: int) -> None:
    for tool in bench.order:
        warm(live)
        run = None if tool.name in bench.broken else tool.backup(live, phase)
        row = bench.record(tool, phase, data_bytes, run)
        if tool.repo.exists():
            row.repo_bytes = disk_usage(tool.repo)


def restore_phase(
    bench: Bench, scratch: Path, expected: datasets.Manifest, data_bytes: int
) -> None:
    for tool in bench.order:
        if tool.name not in bench.broken and not _has_backup(bench, tool.name):
            bench.broken[tool.name] = "no successful backup to restore"
        target = scratch / tool.name
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        if tool.repo.exists():
            warm(tool.repo)  # each tool restores from a cached repository alike
        run = None if tool.name in bench.broken else tool.restore(target)
        row = bench.record(tool, "restore", data_bytes, run)
        if row.error is None:
            row.verified, problem = verify_restore(target, expected)
            if problem:
                row.error = f"RESTORE MISMATCH: {problem}"
                log(f"restore     {tool.name:<9} {row.error}")
        # Restored trees stay until the next run: the disk here is mounted with online
        # discard, so deleting 100k files takes minutes and would spill into the next
        # tool's timed restore.


def _has_backup(bench: Bench, tool: str) -> bool:
    return any(r.tool == tool and r.phase != "restore" and r.error is None for r in bench.results)


def verify_restore(target: Path, expected: datasets.Manifest) -> tuple[bool, str]:
    root = datasets.find_restored_root(target)
    if root is None:
        return False, f"restored tree has no {datasets.MARKER} below {target.name}/"
    problems = datasets.compare(expected, datasets.manifest(root))
    if problems:
        return False, "; ".join(problems)
    return True, ""


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    """snowvault's goal relative to restic: ratio = snowvault / restic for ``metric``."""

    name: str
    metric: str  # "throughput:<phase>", "repo_bytes", "peak_rss" or "group_rss"
    goal: str
    minimum: float | None = None
    maximum: float | None = None


TARGETS = (
    Target("initial backup seconds", "seconds:initial", "<= 0.5x restic", maximum=0.5),
    Target("incremental backup seconds", "seconds:incremental", "<= 0.5x", maximum=0.5),
    Target("incremental bytes added (MiB)", "added:incremental", "<= 1.0x", maximum=1.0),
    Target("no-change backup seconds", "seconds:nochange", "<= 0.4x", maximum=0.4),
    Target("restore seconds", "seconds:restore", "<= 0.75x", maximum=0.75),
    Target("repository size MiB", "repo_bytes", "<= 1.0x", maximum=1.0),
    Target("peak RSS MiB (max over phases)", "peak_rss", "<= 1.0x", maximum=1.0),
    Target("all processes' RSS MiB (sampled sum, max)", "group_rss", "<= 1.0x", maximum=1.0),
)
CORES_TARGET = 1.7
"""snowvault's CPU seconds per wall second in the initial backup, on 2 cores."""


def metric(bench: Bench, tool: str, name: str) -> float | None:
    """One tool's figure for a target; None when a phase it needs failed."""
    rows = [r for r in bench.results if r.tool == tool]
    if name.startswith("seconds:"):
        row = bench.get(tool, name.split(":", 1)[1])
        return row.seconds if row and row.error is None else None
    if name == "added:incremental":
        before, after = bench.get(tool, "initial"), bench.get(tool, "incremental")
        if before is None or after is None or before.repo_bytes is None:
            return None
        if after.repo_bytes is None or before.error or after.error:
            return None
        return (after.repo_bytes - before.repo_bytes) / MIB
    if name == "repo_bytes":
        backups = [r for r in rows if r.phase != "restore"]
        if not backups or any(r.error is not None or r.repo_bytes is None for r in backups):
            return None
        return (backups[-1].repo_bytes or 0) / MIB
    if name == "group_rss":
        sums = [r.group_rss_mib for r in rows if r.group_rss_mib is not None and r.error is None]
        return max(sums) if sums and len(sums) == len(rows) else None
    peaks = [r.peak_rss_mib for r in rows if r.peak_rss_mib is not None and r.error is None]
    return max(peaks) if peaks and len(peaks) == len(rows) else None


def evaluate_targets(bench: Bench, cores: int) -> list[dict[str, Any]]:
    verdicts = []
    for target in TARGETS:
        ours = metric(bench, "snowvault", target.metric)
        theirs = metric(bench, "restic", target.metric)
        ratio = ours / theirs if ours is not None and theirs else None
        met = None
        if ratio is not None:
            met = (target.minimum is None or ratio >= target.minimum) and (
                target.maximum is None or ratio <= target.maximum
            )
        verdicts.append(
            {"target": target.name, "goal": target.goal, "snowvault": ours, "restic": theirs}
            | {"ratio": ratio, "met": met}
        )
    row = bench.get("snowvault", "initial")
    busy = None
    if row is not None and row.error is None and row.seconds and row.cpu_seconds is not None:
        busy = row.cpu_seconds / row.seconds
    theirs_row = bench.get("restic", "initial")
    theirs = None
    if theirs_row is not None and theirs_row.seconds and theirs_row.cpu_seconds is not None:
        theirs = theirs_row.cpu_seconds / theirs_row.seconds
    verdicts.append(
        {
            "target": f"initial backup CPU s / wall s ({cores} cores)",
            "goal": f">= {CORES_TARGET} on 2 cores (absolute, not a ratio)",
            "snowvault": busy,
            "restic": theirs,
            "ratio": None,
            "met": None if busy is None or cores < 2 else busy >= CORES_TARGET,
        }
    )
    return verdicts


def median_bench(runs: list[Bench]) -> Bench:
    """One Bench whose every figure is the median over ``runs`` (same tools, phases)."""
    out = Bench(runs[0].tools, broken=dict(runs[0].broken))
    for first in runs[0].results:
        rows = [r for b in runs if (r := b.get(first.tool, first.phase)) is not None]
        ok = [r for r in rows if r.error is None]
        row = PhaseResult(first.tool, first.phase, first.data_bytes)
        if len(ok) < len(rows):
            row.error = next(r.error for r in rows if r.error is not None)
        for name in ("seconds", "cpu_seconds", "peak_rss_mib", "group_rss_mib", "repo_bytes"):
            values = [getattr(r, name) for r in ok if getattr(r, name) is not None]
            if values:
                setattr(row, name, statistics.median(values))
        if row.repo_bytes is not None:
            row.repo_bytes = int(row.repo_bytes)
        row.verified = all(r.verified for r in rows) if first.phase == "restore" else None
        out.results.append(row)
    return out


# --------------------------------------------------------------------------- report


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "nproc": len(os.sched_getaffinity(0)),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    total_kib = next((int(ln.split()[1]) for ln in meminfo if ln.startswith("MemTotal:")), 0)
    info["memory_gib"] = round(total_kib / 1024 / 1024, 1)
    cpu = Path("/proc/cpuinfo").read_text().splitlines()
    info["cpu"] = next((ln.split(":", 1)[1].strip() for ln in cpu if "model name" in ln), "?")
    return info


def _loads(loads: tuple[float, float, float]) -> str:
    return " / ".join(f"{x:.2f}" for x in loads)


def _cell(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _md(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _status(row: PhaseResult) -> str:
    if row.error is not None:
        if row.error.startswith("RESTORE MISMATCH"):
            return f"**{_md(row.error)}**"
        return _md(row.error)
    return "ok, restore byte-identical" if row.verified else "ok"


def results_table(bench: Bench) -> list[str]:
    lines = [
        "| tool | phase | seconds | ratio to restic | MiB/s | peak RSS MiB "
        "| all processes' RSS MiB | CPU s (user+sys) | CPU s / wall s | status |"
    ]
    lines.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for phase in PHASES:
        for tool in bench.tools:
            row = bench.get(tool.name, phase)
            if row is None:
                continue
            ref = bench.get("restic", phase)
            ratio = None
            if ref is not None and ref.error is None and ref.seconds and row.seconds:
                ratio = row.seconds / ref.seconds
            busy = None
            if row.seconds and row.cpu_seconds is not None and row.error is None:
                busy = row.cpu_seconds / row.seconds
            lines.append(
                f"| {tool.name} | {PHASE_TITLES[phase]} | {_cell(row.seconds, 2)} | "
                f"{_cell(ratio, 2)} | {_cell(row.mib_per_s)} | {_cell(row.peak_rss_mib)} | "
                f"{_cell(row.group_rss_mib)} | {_cell(row.cpu_seconds, 2)} | {_cell(busy, 2)} | "
                f"{_status(row)} |"
            )
    return lines


def per_run_table(runs: list[Bench], orders: list[list[str]]) -> list[str]:
    """Each repetition's seconds (CPU s) per tool and phase, with the tool's place in
    that repetition's order: shows whether a figure follows the tool or the place."""
    head = " | ".join(f"run {i + 1}" for i in range(len(runs)))
    lines = [f"| tool | phase | {head} |", "| --- | --- |" + " ---: |" * len(runs)]
    for phase in PHASES:
        for tool in runs[0].tools:
            cells = []
            for bench, order in zip(runs, orders):
                row = bench.get(tool.name, phase)
                place = order.index(tool.name) + 1 if tool.name in order else 0
                if row is None or row.error is not None or row.seconds is None:
                    cells.append(f"- #{place}")
                else:
                    cells.append(f"{row.seconds:.2f} ({_cell(row.cpu_seconds, 2)}) #{place}")
            lines.append(f"| {tool.name} | {PHASE_TITLES[phase]} | {' | '.join(cells)} |")
    return lines


def repo_table(bench: Bench) -> list[str]:
    lines = ["| tool | after initial MiB | after incremental MiB | after no-change MiB |"]
    lines.append("| --- | ---: | ---: | ---: |")
    for tool in bench.tools:
        cells = []
        for phase in ("initial", "incremental", "nochange"):
            row = bench.get(tool.name, phase)
            size = row.repo_bytes if row else None
            cells.append(_cell(size / MIB if size is not None else None))
        lines.append(f"| {tool.name} | {' | '.join(cells)} |")
    return lines


def targets_table(verdicts: list[dict[str, Any]]) -> list[str]:
    lines = ["| target | goal (snowvault / restic) | snowvault | restic | ratio | met |"]
    lines.append("| --- | --- | ---: | ---: | ---: | --- |")
    for v in verdicts:
        met = "n/a" if v["met"] is None else ("met" if v["met"] else "**not met**")
        lines.append(
            f"| {v['target']} | {v['goal']} | {_cell(v['snowvault'])} | {_cell(v['restic'])} "
            f"| {_cell(v['ratio'], 2)} | {met} |"
        )
    return lines


def render(report: dict[str, Any], bench: Bench) -> str:
    ds = report["dataset"]
    machine = report["machine"]
    out = [f"# Engine benchmark ({ds['spec']['name']} dataset)", ""]
    out += [f"- command: `{report['command']}`", f"- date (UTC): {report['date_utc']}"]
    out.append(
        f"- machine: {machine['nproc']} CPUs ({machine['cpu']}), {machine['memory_gib']} GiB "
        f"memory, Linux {machine['kernel']}, Python {machine['python']}"
    )
    out.append(
        "- load average (1/5/15 min) before the timed phases: "
        f"{_loads(machine['loadavg_before'])}; after: {_loads(machine['loadavg_after'])} "
        "(other work on the machine skews the figures)"
    )
    out += [f"- {name}: {version}" for name, version in report["versions"].items()]
    orders = report.get("orders") or [report["tool_order"]]
    out.append(
        "- tool order within each phase, per repetition ("
        + ("rotated" if len({tuple(o) for o in orders}) > 1 else "the same in each")
        + "): "
        + "; ".join(f"{i + 1}: {', '.join(o)}" for i, o in enumerate(orders))
    )
    out.append(
        f"- repetitions: {report['repeat']} (every figure is the median); cores: "
        + (f"taskset -c {report['cpus']}" if report["cpus"] else "all")
        + f" ({report['cores']} usable)"
    )
    out += ["", "## Dataset", ""]
    out += [f"- {line}" for line in describe_dataset(ds)]
    out += ["", "## Results", "", *results_table(bench)]
    out += ["", "## Repository size on disk (du)", "", *repo_table(bench)]
    if len(orders) > 1:
        out += ["", "## Repetitions one by one", ""]
        out += [
            "Seconds (CPU s) and, after #, the tool's place in that repetition's order "
            "(1 = first in the phase).",
            "",
            *report["per_run"],
        ]
    out += ["", "## snowvault targets (ratio = snowvault / restic, same run)", ""]
    out += targets_table(report["targets"])
    out += ["", "## Method", ""] + [f"- {line}" for line in METHOD]
    return "\n".join(out) + "\n"


def describe_dataset(ds: dict[str, Any]) -> list[str]:
    spec = ds["spec"]
    change = ds["change"]
    if "media_files" in spec:
        return [
            f"media: {spec['media_files']} random (incompressible) files of 1-8 MiB",
            f"logs: {spec['log_files']} record-like compressible files of 2-12 MiB",
            f"documents: {spec['documents']} text-like files of 8-128 KiB",
            f"sparse image: {spec['sparse_bytes'] / MIB:.0f} MiB apparent, one eighth data "
            "(64 KiB blocks of mixed content)",
            f"initial backup: {ds['initial_bytes'] / MIB:.1f} MiB apparent",
            f"incremental backup: + {change['media_added']} media files, "
            f"{change['media_removed']} removed, {change['logs_appended']} logs grown by 5%, "
            f"{change['documents_rewritten']} documents rewritten, "
            f"{change['sparse_blocks_changed']} image blocks rewritten = "
            f"{ds['final_bytes'] / MIB:.1f} MiB (no-change and restore use this too)",
        ]
    return [
        f"source trees: {spec['package']} sdists {', '.join(spec['versions'])} "
        f"({ds['source_mib']:.1f} MiB in all; code only: {spec['code_only']})",
        f"image: {spec['image_bytes'] / MIB:.0f} MiB mixed content (random, zero, text-like, "
        f"record-like runs); changed copy rewrites {change['image_blocks_changed']} "
        "64 KiB blocks",
        f"small files: {spec['small_files']} files, 0-{spec['small_max_bytes'] // 1024} KiB "
        f"({ds['small_mib']:.1f} MiB)",
        f"initial backup: versions 1..{len(spec['versions']) - 1} + image + small files = "
        f"{ds['initial_bytes'] / MIB:.1f} MiB",
        f"incremental backup: + {spec['package']} {change['added_version']}, changed image, "
        f"{change['small_touched']} small files touched and {change['small_rewritten']} "
        f"rewritten = {ds['final_bytes'] / MIB:.1f} MiB (no-change and restore use this too)",
    ]


METHOD = (
    "Each tool gets a fresh repository and its own home/cache folder inside the work dir.",
    "Throughput = bytes of the whole backed-up tree / wall seconds (also for incremental, "
    "no-change and restore).",
    f"Peak RSS and CPU seconds source: {RSS_SOURCE}; CPU seconds include every worker "
    "process (their own children); 'all processes' RSS' is the largest sum of the RSS of "
    f"the tool's processes, sampled every {GROUP_SAMPLE_SECONDS} s (shared pages counted "
    "once per process: an upper bound).",
    "CPU seconds (user+sys of the tool) are less skewed by other load than wall seconds.",
    "Before every timed command the harness calls sync(2), so no tool's run pays for the "
    "writeback of the previous tool's repository (each tool fsyncs what it writes).",
    "Caches are warm for every tool: the whole tree is read (hashed) before the first timed "
    "phase and again after the incremental change, and read again (into the page cache, "
    "not timed) right before each tool's backup, and the tool's repository before its "
    "restore: borg 1.2 drops the pages it reads, so the tool after it would otherwise "
    "read cold; page cache cannot be dropped here.",
    "restic 0.14: repository format 2, compression auto, --cache-dir in the work dir, "
    "--host bench. borg: repokey-blake2, zstd,3, BORG_BASE_DIR in the work dir. "
    "snowvault: its `repo` CLI with SNOWVAULT_PASSWORD, from compiled bytecode (in the "
    "work dir; written before the timed phases) as an installed copy would run.",
    "Every restore is compared file by file (sha1, sizes, tree shape) with the source tree.",
)


def dataset_report(
    dataset: datasets.Dataset, initial: int, final: int, change: datasets.ChangeSummary
) -> dict[str, Any]:
    return {
        "spec": asdict(dataset.spec),
        "source_mib": sum(datasets.tree_bytes(p) for p in dataset.source_dirs) / MIB,
        "small_mib": datasets.tree_bytes(dataset.small_dir) / MIB,
        "initial_bytes": initial,
        "final_bytes": final,
        "change": asdict(change),
    }


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="~200 MiB dataset (smoke run)")
    parser.add_argument(
        "--set",
        choices=("full", "quick", "media"),
        default=None,
        help="dataset: full (default; sources, image, 100,000 small files), quick, or "
        "media (large incompressible files, growing logs, a sparse image, documents)",
    )
    parser.add_argument("--tools", default=",".join(TOOL_ORDER), help="comma-separated tools")
    parser.add_argument("--workdir", type=Path, default=REPO_ROOT / "benchmarks" / "work")
    parser.add_argument("--results-dir", type=Path, default=REPO_ROOT / "benchmarks" / "results")
    parser.add_argument("--timeout", type=float, default=7200.0, help="seconds per command")
    parser.add_argument("--repeat", type=int, default=1, help="whole runs; figures are medians")
    parser.add_argument("--cpus", default=None, help="run every tool under taskset -c CPUS")
    parser.add_argument(
        "--order",
        choices=("rotate", "fixed"),
        default="rotate",
        help="rotate (default): repetition i runs the tools starting at the i-th (mod their "
        "number), so each tool follows a different one; fixed: always --tools' order",
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.tools.split(",") if n.strip()]
    unknown = sorted(set(names) - set(TOOL_ORDER))
    if unknown or not names:
        parser.error(f"--tools takes a subset of {','.join(TOOL_ORDER)}; got {args.tools!r}")
    args.tool_names = [n for n in TOOL_ORDER if n in names]
    if args.set is None:
        args.set = "quick" if args.quick else "full"
    args.quick = args.set == "quick"
    return args


def run_bench(args: argparse.Namespace, command: str) -> tuple[dict[str, Any], Bench]:
    global CPUS
    CPUS = args.cpus
    cores = len(args.cpus.split(",")) if args.cpus else len(os.sched_getaffinity(0))
    load_before = os.getloadavg()
    runs = []
    orders = []
    trash = args.workdir.resolve() / "trash"
    for i in range(max(1, args.repeat)):
        order = rotated(args.tool_names, i) if args.order == "rotate" else args.tool_names
        log(f"run {i + 1} of {args.repeat}, tool order {', '.join(order)}")
        report, bench = run_once(args, command, trash / f"{os.getpid()}-{i}", order)
        runs.append(bench)
        orders.append(order)
    if trash.exists():  # after every timed phase (see run_once)
        log("removing the runs' trees")
        shutil.rmtree(trash)
    bench = median_bench(runs) if len(runs) > 1 else runs[0]
    report["machine"]["loadavg_before"] = load_before
    report["results"] = [asdict(r) | {"mib_per_s": r.mib_per_s} for r in bench.results]
    report["runs"] = [[asdict(r) for r in b.results] for b in runs]
    report["orders"] = orders
    report["per_run"] = per_run_table(runs, orders)
    report["targets"] = evaluate_targets(bench, cores)
    report |= {"repeat": len(runs), "cpus": args.cpus, "cores": cores}
    return report, bench


def run_once(
    args: argparse.Namespace, command: str, trash: Path, order: list[str]
) -> tuple[dict[str, Any], Bench]:
    """One run of every phase. The previous run's trees are moved aside (to ``trash``,
    removed after the last run), not deleted: on ext4 every file created in the next
    minutes pays for a scan past the inodes just freed (the kernel's
    ``recently_deleted``), which made restores 2-6x slower, restic's and ours, and
    more so with two threads creating files."""
    workdir: Path = args.workdir.resolve()
    run_dir = workdir / "run"
    if run_dir.exists():
        trash.parent.mkdir(parents=True, exist_ok=True)
        run_dir.rename(trash)
    live = run_dir / "live"
    if args.set == "media":
        media_root = datasets.build_media(datasets.MEDIA, workdir, log)
        log("laying out the live tree")
        datasets.prepare_media_live(media_root, live)

        def change_live() -> tuple[dict[str, Any], Any]:
            change = datasets.apply_media_change(datasets.MEDIA, live)
            return asdict(change), None
    else:
        spec = datasets.QUICK if args.set == "quick" else datasets.FULL
        dataset = datasets.build_dataset(spec, workdir, log)
        log("laying out the live tree")
        datasets.prepare_live_tree(dataset, live)

        def change_live() -> tuple[dict[str, Any], Any]:
            change = datasets.apply_incremental_change(dataset, live)
            return asdict(change), change

    log("warm-up read of the live tree")
    initial_bytes = datasets.total_bytes(datasets.manifest(live))
    load_before = os.getloadavg()
    tools = {n: TOOL_CLASSES[n](run_dir / "tools", args.timeout) for n in args.tool_names}
    bench = Bench([tools[n] for n in args.tool_names], order=[tools[n] for n in order])
    versions = {tool.name: tool.version() for tool in bench.tools}
    init_repos(bench)
    backup_phase(bench, "initial", live, initial_bytes)
    log("applying the incremental change")
    change_doc, change = change_live()
    log("warm-up read of the changed tree")
    expected = datasets.manifest(live)
    final_bytes = datasets.total_bytes(expected)
    backup_phase(bench, "incremental", live, final_bytes)
    backup_phase(bench, "nochange", live, final_bytes)
    restore_phase(bench, run_dir / "restore", expected, final_bytes)
    report: dict[str, Any] = {
        "command": command,
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine_info()
        | {"loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "versions": versions,
        "tool_order": order,
        "dataset": (
            {
                "spec": asdict(datasets.MEDIA),
                "initial_bytes": initial_bytes,
                "final_bytes": final_bytes,
                "change": change_doc,
            }
            if args.set == "media"
            else dataset_report(dataset, initial_bytes, final_bytes, change)
        ),
        "results": [asdict(r) | {"mib_per_s": r.mib_per_s} for r in bench.results],
        "snowvault_stats": next((t.stats() for t in bench.tools if t.name == "snowvault"), None),
    }
    return report, bench


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    shown = sys.argv[1:] if argv is None else argv
    command = shlex.join(["python", "benchmarks/engine_bench.py", *shown])
    report, bench = run_bench(args, command)
    markdown = render(report, bench)
    day = report["date_utc"][:10].replace("-", "")
    suffix = ("" if args.set == "full" else f"-{args.set}") + (
        f"-cpus{args.cpus}" if args.cpus else ""
    )
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / f"engine-{day}{suffix}.md"
    path.write_text(markdown)
    print(markdown)
    print(f"(written to {path})", file=sys.stderr)
    print(json.dumps(report, default=str, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
