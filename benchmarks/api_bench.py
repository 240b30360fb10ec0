"""API benchmark: snowvault's AWS Backup endpoint against moto's, with boto3, on loopback.

What is compared (moto 5.x implements vaults but no recovery points, backup jobs or
pagination of ListBackupVaults, so the closest fair pairs are used and named as such):

- **ListBackupVaults** with one vault in each server; snowvault's answer also counts
  that vault's 10,000 recovery points (NumberOfRecoveryPoints is a SQL count), moto's
  is a stored 0.
- **DescribeBackupVault** (both servers) — the same single-item lookup on both sides.
- **DescribeRecoveryPoint** (snowvault only; moto has no recovery points).
- **List 10,000 items**: snowvault paginates all 10,000 recovery points with
  ListRecoveryPointsByBackupVault (MaxResults 1000, keyset pages from SQLite);
  moto has nothing to paginate, so it lists 10,000 *vaults* with ListBackupVaults,
  which it returns in one unpaginated response from a Python dict.

Set-up: snowvault is started as its own process (``snowvault init`` + ``snowvault
server``, temporary data dir, SQLite catalog); its vault is made through the API, and the
10,000 recovery points are inserted straight into its catalog with the named function
``catalog.recovery_points.create`` in one transaction (no backups run). moto's
``ThreadedMotoServer`` runs in a child process too (so neither server shares the GIL
with the client); its 10,000 vaults are made in that process through moto's backend.
Every call is sequential, one boto3 client per server, SigV4 signed, no retries.

Observability overhead (issue 16): ``--observability off`` starts snowvault with
``"trail": false`` and ``"metrics_address": "off"`` in its config.json (no audit trail
record, no metrics observer per request); ``--observability both`` runs snowvault twice,
with and without, alternating ``--rounds`` times (the rows say which), to show what the
trail and the metrics cost per request; ``--observability paired`` runs both servers at
once and alternates each operation's calls between them in ``--rounds`` batches (the
fairest on a busy machine), adding TagResource as a mutating call.

Usage: .venv/bin/python benchmarks/api_bench.py [--calls 1000] [--points 10000]
           [--servers snowvault,moto] [--observability on|off|both|paired] [--rounds 1]
Prints a Markdown table (with the command, date, machine and load average) on stdout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from random import Random
from typing import Any

import boto3
import botocore.config

REPO_ROOT = Path(__file__).resolve().parent.parent
SNOWVAULT = str(REPO_ROOT / ".venv" / "bin" / "snowvault")
VAULT = "bench"
MOTO_ACCOUNT = "123456789012"
REGION = "us-east-1"
SEED = 20260101


def log(message: str) -> None:
    print(f"[api_bench] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def backup_client(endpoint: str, key: str, secret: str) -> Any:
    config = botocore.config.Config(retries={"max_attempts": 1}, read_timeout=120)
    return boto3.session.Session().client(
        "backup",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=config,
    )


# ------------------------------------------------------------------------- measuring


@dataclass
class Timing:
    server: str
    operation: str
    calls: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.calls / self.seconds

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def measure(server: str, operation: str, calls: int, fn: Callable[[], Any]) -> Timing:
    for _ in range(min(20, calls)):  # warm up connections and caches
        fn()
    latencies = []
    start = time.perf_counter()
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        latencies.append(time.perf_counter() - t0)
    timing = Timing(server, operation, calls, time.perf_counter() - start, latencies)
    log(f"{server} {operation}: {timing.rate:.0f} req/s, p50 {timing.quantile(0.5):.2f} ms")
    return timing


@dataclass
class Listing:
    server: str
    operation: str
    items: int
    pages: int
    seconds: float


def list_all(server: str, client: Any, operation: str, key: str, **params: Any) -> Listing:
    start = time.perf_counter()
    items = pages = 0
    paginator = client.get_paginator(operation)
    for page in paginator.paginate(**params):
        items += len(page.get(key, []))
        pages += 1
    name = "".join(part.title() for part in operation.split("_"))
    listing = Listing(server, name, items, pages, time.perf_counter() - start)
    log(f"{server} {name}: {items} items in {pages} pages, {listing.seconds:.2f} s")
    return listing


# ------------------------------------------------------------------------- snowvault


@dataclass
class Snowvault:
    endpoint: str
    key: str
    secret: str
    account: str
    data_dir: Path


@contextmanager
def snowvault_server(workdir: Path, observability: bool = True) -> Iterator[Snowvault]:
    data_dir = workdir / f"snowvault-data-{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = dict(os.environ, HOME=str(workdir), XDG_CONFIG_HOME=str(workdir / "config"))
    init = subprocess.run(
        [SNOWVAULT, "init", "--data-dir", str(data_dir), "--port", str(port), "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    creds = json.loads(init.stdout.strip().splitlines()[-1])
    if not observability:  # issue 16's overhead: no trail, no metrics observer
        config_path = data_dir / "config.json"
        config = json.loads(config_path.read_text())
        config.update(trail=False, metrics_address="off")
        config_path.write_text(json.dumps(config))
    log_file = (workdir / "snowvault-server.log").open("w")
    server = subprocess.Popen(
        [SNOWVAULT, "server", "--data-dir", str(data_dir), "--port", str(port)],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port)
        yield Snowvault(
            f"http://127.0.0.1:{port}",
            creds["access_key_id"],
            creds["secret_access_key"],
            creds["account_id"],
            data_dir,
        )
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log_file.close()


def insert_recovery_points(sv: Snowvault, count: int) -> None:
    """Insert ``count`` recovery points into the vault, straight into the catalog."""
    from snowvault import app
    from snowvault.control import catalog

    config = app.ServerConfig.load(sv.data_dir)
    engine = catalog.db.create_engine(config.catalog_url)
    rng = Random(SEED)
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    resource = f"arn:aws:backup:{REGION}:{sv.account}:resource:bench-dir"
    try:
        with catalog.db.transaction(engine) as conn:
            vault = catalog.vaults.get(conn, account_id=sv.account, region=REGION, name=VAULT)
            for i in range(count):
                rp_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                created = base + dt.timedelta(seconds=i)
                catalog.recovery_points.create(
                    conn,
                    arn=f"arn:aws:backup:{REGION}:{sv.account}:recovery-point:{rp_id}",
                    account_id=sv.account,
                    region=REGION,
                    backup_vault_name=VAULT,
                    backup_vault_arn=vault["arn"],
                    vault_type=vault["vault_type"],
                    engine_recovery_point_id=rp_id.replace("-", ""),
                    resource_arn=resource,
                    resource_type="Directory",
                    resource_name="bench-dir",
                    iam_role_arn=f"arn:aws:iam::{sv.account}:role/snowvault",
                    status="COMPLETED",
                    creation_date=created,
                    initiation_date=created,
                    completion_date=created + dt.timedelta(seconds=1),
                    backup_size_in_bytes=rng.randrange(1 << 30),
                    lifecycle={},
                    encryption_key_arn=vault["encryption_key_arn"],
                    encryption_key_type=vault["encryption_key_type"],
                    created_by={},
                )
    finally:
        engine.dispose()


def bench_snowvault(
    workdir: Path, calls: int, points: int, observability: bool = True, label: str = "snowvault"
) -> list[Timing | Listing]:
    with snowvault_server(workdir, observability) as sv:
        client = backup_client(sv.endpoint, sv.key, sv.secret)
        client.create_backup_vault(BackupVaultName=VAULT)
        t0 = time.perf_counter()
        insert_recovery_points(sv, points)
        log(f"snowvault: inserted {points} recovery points in {time.perf_counter() - t0:.1f} s")
        arns = [
            p["RecoveryPointArn"]
            for p in client.list_recovery_points_by_backup_vault(
                BackupVaultName=VAULT, MaxResults=100
            )["RecoveryPoints"]
        ]
        rng = Random(SEED)
        return [
            measure(label, "ListBackupVaults", calls, client.list_backup_vaults),
            measure(
                label,
                "DescribeBackupVault",
                calls,
                lambda: client.describe_backup_vault(BackupVaultName=VAULT),
            ),
            measure(
                label,
                "DescribeRecoveryPoint",
                calls,
                lambda: client.describe_recovery_point(
                    BackupVaultName=VAULT, RecoveryPointArn=rng.choice(arns)
                ),
            ),
            list_all(
                label,
                client,
                "list_recovery_points_by_backup_vault",
                "RecoveryPoints",
                BackupVaultName=VAULT,
                PaginationConfig={"PageSize": 1000},
            ),
        ]


def _prepared(sv: Snowvault, points: int) -> tuple[Any, list[str]]:
    client = backup_client(sv.endpoint, sv.key, sv.secret)
    client.create_backup_vault(BackupVaultName=VAULT)
    insert_recovery_points(sv, points)
    pages = client.list_recovery_points_by_backup_vault(BackupVaultName=VAULT, MaxResults=100)
    return client, [p["RecoveryPointArn"] for p in pages["RecoveryPoints"]]


def bench_paired(workdir: Path, calls: int, points: int, batches: int) -> list[Timing]:
    """The observability overhead, paired: two servers at once, one with the trail and
    metrics, one with neither; each operation's calls alternate between them in
    ``batches`` batches (who goes first alternates too), so a busy machine's drift hits
    both alike. Also times a mutating call (TagResource: a trail record with
    requestParameters and responseElements)."""
    on_label, off_label = "snowvault (trail + metrics)", "snowvault (neither)"
    with (
        snowvault_server(workdir, True) as on,
        snowvault_server(workdir, False) as off,
    ):
        sides = {on_label: _prepared(on, points), off_label: _prepared(off, points)}
        rng = Random(SEED)

        def ops(client: Any, arns: list[str]) -> dict[str, Callable[[], Any]]:
            vault_arn = client.describe_backup_vault(BackupVaultName=VAULT)["BackupVaultArn"]
            return {
                "ListBackupVaults": client.list_backup_vaults,
                "DescribeBackupVault": lambda: client.describe_backup_vault(BackupVaultName=VAULT),
                "DescribeRecoveryPoint": lambda: client.describe_recovery_point(
                    BackupVaultName=VAULT, RecoveryPointArn=rng.choice(arns)
                ),
                "TagResource": lambda: client.tag_resource(
                    ResourceArn=vault_arn, Tags={"bench": str(rng.random())}
                ),
            }

        table = {label: ops(*side) for label, side in sides.items()}
        results: list[Timing] = []
        per_batch = max(1, calls // batches)
        for operation in table[on_label]:
            lat: dict[str, list[float]] = {on_label: [], off_label: []}
            for label in lat:  # warm-up
                for _ in range(20):
                    table[label][operation]()
            for b in range(batches):
                order = [on_label, off_label] if b % 2 == 0 else [off_label, on_label]
                for label in order:
                    fn = table[label][operation]
                    for _ in range(per_batch):
                        t0 = time.perf_counter()
                        fn()
                        lat[label].append(time.perf_counter() - t0)
            for label, values in lat.items():
                timing = Timing(label, operation, len(values), sum(values), values)
                log(f"{label} {operation}: {timing.rate:.0f} req/s, p50 {timing.quantile(0.5):.2f}")
                results.append(timing)
        return results


# ----------------------------------------------------------------------------- moto


def _moto_child(port: int, conn: Connection) -> None:
    """Run ThreadedMotoServer; on "populate N", add N vaults through moto's backend."""
    import logging

    from moto.backup.models import backup_backends
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    conn.send("ready")
    try:
        while True:
            command = conn.recv()
            if command == "stop":
                return
            count = int(command.split()[1])
            backend = backup_backends[MOTO_ACCOUNT][REGION]
            for i in range(count):
                backend.create_backup_vault(f"{VAULT}-{i:05d}", {}, "", f"bench-{i}")
            conn.send(f"populated {count}")
    finally:
        server.stop()


def bench_moto(calls: int, points: int) -> list[Timing | Listing]:
    port = free_port()
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=_moto_child, args=(port, child), daemon=True)
    proc.start()
    try:
        if not parent.poll(60) or parent.recv() != "ready":
            raise RuntimeError("moto server did not start")
        client = backup_client(f"http://127.0.0.1:{port}", "testing", "testing")
        client.create_backup_vault(BackupVaultName=VAULT)
        results: list[Timing | Listing] = [
            measure("moto", "ListBackupVaults", calls, client.list_backup_vaults),
            measure(
                "moto",
                "DescribeBackupVault",
                calls,
                lambda: client.describe_backup_vault(BackupVaultName=VAULT),
            ),
        ]
        parent.send(f"populate {points}")
        if not parent.poll(300):
            raise RuntimeError("moto did not populate in time")
        parent.recv()
        results.append(list_all("moto", client, "list_backup_vaults", "BackupVaultList"))
        return results
    finally:
        parent.send("stop")
        proc.join(20)
        if proc.is_alive():
            proc.kill()


# --------------------------------------------------------------------------- report


def machine() -> str:
    cpu = "?"
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next((ln.split(":", 1)[1].strip() for ln in lines if "model name" in ln), "?")
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def versions() -> str:
    from importlib.metadata import version

    return ", ".join(f"{p} {version(p)}" for p in ("boto3", "moto", "uvicorn", "starlette"))


def report(results: list[Timing | Listing], argv: list[str]) -> str:
    lines = [
        "## API benchmark: snowvault vs moto (AWS Backup API, boto3, loopback)",
        "",
        f"- command: `{shlex.join(['.venv/bin/python', 'benchmarks/api_bench.py', *argv])}`",
        f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {machine()}",
        f"- load average (1, 5, 15 min) at the end: {load_average()}",
        f"- versions: {versions()}",
        "",
        "| server | operation | calls | req/s | p50 ms | p99 ms |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        if isinstance(r, Timing):
            lines.append(
                f"| {r.server} | {r.operation} | {r.calls} | {r.rate:,.0f} | "
                f"{r.quantile(0.5):.2f} | {r.quantile(0.99):.2f} |"
            )
    lines += [
        "",
        "| server | listing | items | pages | seconds | items/s |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        if isinstance(r, Listing):
            lines.append(
                f"| {r.server} | {r.operation} | {r.items:,} | {r.pages} | {r.seconds:.2f} | "
                f"{r.items / r.seconds:,.0f} |"
            )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="sequential calls per operation")
    parser.add_argument("--points", type=int, default=10_000, help="recovery points / items")
    parser.add_argument("--servers", default="snowvault,moto")
    parser.add_argument(
        "--observability",
        choices=("on", "off", "both", "paired"),
        default="on",
        help="snowvault with the trail and metrics (on), without (off), or each in turn",
    )
    parser.add_argument("--rounds", type=int, default=1, help="repeat the snowvault runs")
    args = parser.parse_args(argv)
    servers = args.servers.split(",")
    results: list[Timing | Listing] = []
    modes = {"on": [True], "off": [False], "both": [True, False], "paired": []}[args.observability]
    with tempfile.TemporaryDirectory(prefix="snowvault-api-bench-") as tmp:
        if args.observability == "paired":
            results += bench_paired(Path(tmp), args.calls, args.points, max(2, args.rounds))
        elif "snowvault" in servers:
            for round_ in range(args.rounds):
                for on in modes:
                    label = "snowvault" if on else "snowvault (no trail, no metrics)"
                    if args.rounds > 1:
                        label += f" #{round_ + 1}"
                    results += bench_snowvault(Path(tmp), args.calls, args.points, on, label)
        if "moto" in servers:
            results += bench_moto(args.calls, args.points)
    print(report(results, argv))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
