"""Copy jobs (issue 14) beside copying the repository's files with rsync and beside
``restic copy``, on the same data, in one run.

The data: a ~300 MB tree from benchmarks/datasets.py (two Django releases' code, a
224 MiB disk-image-like file of mixed content, 10,000 small files), then the
datasets' 1% change (a third release added, 1% of the image's 64 KiB blocks rewritten,
1% of the small files touched or rewritten).

What is timed, first on the initial tree and again after the change:

- snowvault: a ``snowvault server`` process over a fresh data dir with two regions;
  a Directory resource backed up into vault ``main`` (us-east-1), then boto3
  StartCopyJob of that point into vault ``dr`` of eu-west-1 (another region's storage
  location), DescribeCopyJob polled every 0.2 s. The copy re-encrypts every blob under
  the destination vault's key; the second copy moves only what the destination lacks
  (but reads and decrypts every blob of the point from the source).
- rsync: ``rsync -a --delete`` of the source vault's repository folder to another
  folder (a byte copy: same keys, no re-encryption, no check of what it copies).
- restic: ``restic copy --from-repo`` from one restic repository holding the same
  backups to a second one initialised with ``--copy-chunker-params`` (re-encrypts under
  the second repository's key, copies only missing blobs).

Each row says the seconds, MiB/s (the tree's logical size / seconds) and what the
destination grew by on disk (du). After the second copy the copied snowvault point is
restored and compared file by file with the tree (``--no-verify`` skips it).

Usage: .venv/bin/python benchmarks/copy_bench.py [--workdir DIR] [--results-dir DIR]
       [--no-verify]
(``make bench-copy``; ``make bench-tools`` installs restic, borg and rsync). The
Django sdists come from PyPI (``pip download``) into ``WORKDIR/downloads`` unless
already there. Output: a Markdown report on stdout and in
benchmarks/results/copy-YYYYMMDD.md, then one line of JSON.

Depends only on the standard library, boto3 and the sibling benchmark modules
(datasets, resources_bench's server driver); it does not import snowvault or the tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import datasets
from resources_bench import (
    MIB,
    POLL,
    REPO_ROOT,
    RESTIC_PASSWORD,
    ROLE,
    Server,
    commit_id,
    du,
    log,
    run,
    version,
)

SPEC = datasets.DatasetSpec(
    name="copy",
    package="Django",
    versions=("5.0.6", "5.0.7", "5.0.8"),
    code_only=True,
    image_bytes=224 * 1024 * 1024,
    changed_block_fraction=0.01,
    small_files=10_000,
    small_max_bytes=16 * 1024,
    seed=20261207,
)
DEST_REGION = "eu-west-1"
FINAL_COPY = {"COMPLETED", "PARTIAL", "FAILED"}


@dataclass
class Row:
    tool: str
    phase: str  # "first" or "after 1% change"
    seconds: float
    data_bytes: int
    grew: int
    note: str = ""


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        rate = row.data_bytes / MIB / row.seconds if row.seconds else 0.0
        log(
            f"  {row.tool} {row.phase}: {row.seconds:.2f} s, {rate:.1f} MiB/s, "
            f"destination +{row.grew / MIB:.1f} MiB {row.note}"
        )


class Snowvault:
    """The server, the source vault ``main`` and the destination vault ``dr`` in
    another region."""

    def __init__(self, root: Path, allow: Path) -> None:
        self.server = Server(root, allow=[allow])
        config_path = self.server.data_dir / "config.json"
        config = json.loads(config_path.read_text())
        config["regions"][DEST_REGION] = str(self.server.data_dir / "storage" / DEST_REGION)
        config_path.write_text(json.dumps(config))
        self.server.start()
        self.east = self.server.backup
        self.west = self._client(DEST_REGION)
        self.source_folder = self.server.vault("main")
        dest = self.west.create_backup_vault(BackupVaultName="dr")
        self.dest_arn = str(dest["BackupVaultArn"])
        self.dest_folder = self._folder(DEST_REGION, "dr")

    def _client(self, region: str) -> Any:
        import boto3
        from botocore.config import Config

        creds = self.server.creds
        return boto3.client(
            "backup",
            endpoint_url=f"http://127.0.0.1:{self.server.port}",
            region_name=region,
            aws_access_key_id=creds["access_key_id"],
            aws_secret_access_key=creds["secret_access_key"],
            config=Config(retries={"max_attempts": 3, "mode": "standard"}),
        )

    def _folder(self, region: str, name: str) -> Path:
        found = [p for p in (self.server.data_dir / "storage" / region).glob(f"*/{name}-*")]
        if len(found) != 1:
            raise RuntimeError(f"vault folder of {name}: {found}")
        return found[0]

    def copy(self, rp_arn: str) -> tuple[float, dict[str, Any]]:
        start = time.perf_counter()
        job_id = self.east.start_copy_job(
            RecoveryPointArn=rp_arn,
            SourceBackupVaultName="main",
            DestinationBackupVaultArn=self.dest_arn,
            IamRoleArn=ROLE,
        )["CopyJobId"]
        while True:
            job: dict[str, Any] = self.east.describe_copy_job(CopyJobId=job_id)["CopyJob"]
            if job["State"] in FINAL_COPY:
                seconds = time.perf_counter() - start
                break
            time.sleep(POLL)
        if job["State"] != "COMPLETED":
            raise RuntimeError(f"copy job {job['State']}: {job.get('StatusMessage')}")
        return seconds, job

    def restore_copy(self, job: dict[str, Any], target: Path) -> float:
        start = time.perf_counter()
        job_id = self.west.start_restore_job(
            RecoveryPointArn=job["DestinationRecoveryPointArn"],
            Metadata={"targetPath": str(target)},
            IamRoleArn=ROLE,
        )["RestoreJobId"]
        while True:
            done = self.west.describe_restore_job(RestoreJobId=job_id)
            if done["Status"] in {"COMPLETED", "FAILED", "ABORTED"}:
                break
            time.sleep(POLL)
        if done["Status"] != "COMPLETED":
            raise RuntimeError(f"restore of the copy {done['Status']}: {done.get('StatusMessage')}")
        return time.perf_counter() - start


class ResticPair:
    """Repository A (backed up into) and B (copied into, same chunker parameters)."""

    def __init__(self, root: Path) -> None:
        self.a, self.b = root / "a", root / "b"
        self.env = dict(
            os.environ,
            RESTIC_PASSWORD=RESTIC_PASSWORD,
            RESTIC_FROM_PASSWORD=RESTIC_PASSWORD,
            RESTIC_CACHE_DIR=str(root / "cache"),
        )
        run(["restic", "-r", str(self.a), "init", "--repository-version", "2"], env=self.env)
        run(
            [
                "restic",
                *("-r", str(self.b), "init", "--repository-version", "2"),
                *("--from-repo", str(self.a), "--copy-chunker-params"),
            ],
            env=self.env,
        )

    def backup(self, path: Path) -> float:
        return run(
            ["restic", "-r", str(self.a), "backup", "--host", "bench", str(path)], env=self.env
        )[0]

    def copy(self) -> float:
        return run(["restic", "-r", str(self.b), "copy", "--from-repo", str(self.a)], env=self.env)[
            0
        ]


def _rsync(source: Path, target: Path) -> float:
    target.mkdir(parents=True, exist_ok=True)
    return run(["rsync", "-a", "--delete", f"{source}/", f"{target}/"])[0]


def bench(res: Results, work: Path, verify: bool) -> None:
    dataset = datasets.build_dataset(SPEC, work, log)
    live = work / "data" / "live"
    datasets.prepare_live_tree(dataset, live)
    sv = Snowvault(work / "sv", allow=work / "data")
    try:
        _bench(res, work, sv, live, dataset, verify)
    finally:
        sv.server.stop()


def _bench(
    res: Results,
    work: Path,
    sv: Snowvault,
    live: Path,
    dataset: datasets.Dataset,
    verify: bool,
) -> None:
    restic = ResticPair(work / "restic")
    mirror = work / "rsync-mirror"
    arn = sv.server.register("Directory", "live", str(live))
    for phase in ("first", "after 1% change"):
        if phase != "first":
            change = datasets.apply_incremental_change(dataset, live)
            res.facts["change"] = asdict(change)
        size = datasets.tree_bytes(live)
        res.facts[f"tree_bytes {phase}"] = size
        log(f"== {phase}: tree {size / MIB:.0f} MiB; backups (not timed here)")
        seconds, job = sv.server.backup_job("main", arn)
        res.facts[f"snowvault backup seconds {phase}"] = round(seconds, 1)
        res.facts[f"restic backup seconds {phase}"] = round(restic.backup(live), 1)

        log(f"== {phase}: copies")
        before = du(sv.dest_folder)
        seconds, copied = sv.copy(job["RecoveryPointArn"])
        res.add(
            Row(
                "snowvault copy job",
                phase,
                seconds,
                size,
                du(sv.dest_folder) - before,
                str(copied.get("StatusMessage") or ""),
            )
        )
        before = du(mirror) if mirror.exists() else 0
        seconds = _rsync(sv.source_folder, mirror)
        note = "a byte copy: same keys, nothing read back or verified"
        res.add(Row("rsync of the vault folder", phase, seconds, size, du(mirror) - before, note))
        before = du(restic.b)
        note = "re-encrypted, missing blobs only"
        res.add(Row("restic copy", phase, restic.copy(), size, du(restic.b) - before, note))
    if verify:
        log("== restoring the second copy and comparing it with the tree")
        target = work / "data" / "restored"
        seconds = sv.restore_copy(copied, target)
        root = datasets.find_restored_root(target)
        same = root is not None and datasets.manifest(root) == datasets.manifest(live)
        res.facts["restore of the copy"] = f"{seconds:.1f} s, identical: {same}"
        if not same:
            raise RuntimeError("the restored copy differs from the tree")


def _row(r: Row) -> str:
    rate = r.data_bytes / MIB / r.seconds if r.seconds else 0.0
    return (
        f"| {r.tool} | {r.phase} | {r.seconds:.2f} | {rate:.1f} | {r.grew / MIB:.1f} | {r.note} |"
    )


def report(res: Results, meta: dict[str, Any], error: str | None) -> str:
    lines = [
        f"# Copies beside rsync and restic copy ({meta['date']})",
        "",
        f"- command: `{meta['command']}`",
        f"- date: {meta['date']}; commit {meta['commit']}",
        f"- load average (1/5/15 min) before: {meta['load_before']}; after: {meta['load_after']}"
        " (the machine is shared with other helpers' work: times are noisy)",
        f"- machine: {meta['machine']}",
        f"- versions: {meta['versions']}",
        f"- data: {', '.join(f'{k}: {v}' for k, v in res.facts.items())}",
        "- MiB/s = the tree's logical size / seconds; grew = what the destination grew by "
        "on disk (du)",
        f"- total wall time: {meta['wall']:.0f} s",
        "",
        "| tool | phase | seconds | MiB/s | grew MiB | note |",
        "| --- | --- | ---: | ---: | ---: | --- |",
        *map(_row, res.rows),
        "",
    ]
    if error:
        lines += ["## Error", "", error, ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=REPO_ROOT / "benchmarks/work/copy")
    parser.add_argument("--results-dir", type=Path, default=REPO_ROOT / "benchmarks/results")
    parser.add_argument("--no-verify", action="store_true", help="skip the restore check")
    args = parser.parse_args()
    started = time.perf_counter()
    load_before = os.getloadavg()
    now = dt.datetime.now(dt.UTC)
    work: Path = args.workdir
    for stale in ("sv", "data", "restic", "rsync-mirror"):
        shutil.rmtree(work / stale, ignore_errors=True)
    (work / "data").mkdir(parents=True)
    res = Results()
    error = None
    try:
        bench(res, work, verify=not args.no_verify)
    except Exception as exc:  # recorded in the report
        error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:600]}"
        log(error)
    meta = {
        "command": shlex.join([".venv/bin/python", "benchmarks/copy_bench.py", *sys.argv[1:]]),
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit_id(),
        "load_before": " / ".join(f"{x:.2f}" for x in load_before),
        "load_after": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
        "machine": f"{len(os.sched_getaffinity(0))} CPUs, Linux {platform.release()}, "
        f"Python {platform.python_version()}",
        "versions": "; ".join(version(c) for c in (["restic", "version"], ["rsync", "--version"])),
        "wall": time.perf_counter() - started,
    }
    text = report(res, meta, error)
    print(text)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / f"copy-{now:%Y%m%d}.md").write_text(text + "\n")
    print(json.dumps({"meta": meta, "rows": [asdict(r) for r in res.rows], "facts": res.facts}))
    return 1 if error else 0


if __name__ == "__main__":
    sys.exit(main())
