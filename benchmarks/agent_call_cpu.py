"""What each agent call costs the server, by the CPU time of the thread that answers it:
an agent's backup of a tree, then again with no change, into a moto S3 vault, every
call answered in-process through the extension API's own handlers (no HTTP, no SigV4,
no trail: those are in agent_bench.py's whole-process figures), each call's
``time.thread_time()`` summed by action. The agent's own work runs in the same process
but outside the timed calls.

    .venv/bin/python benchmarks/agent_call_cpu.py TREE [--profile ACTION,...]
        [--packs-per-call N]

The server's CPU that grows with the data is the slope between two trees (the same
tree with a larger file): agent_bench.py --image-mib builds one.

Uses the test helpers (tests/helpers) for the world: a SQLite catalog, a FakeClock.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from helpers import agent_world
from helpers.access_world import ROLE
from snowvault.agent import runner, store
from snowvault.control.services import backup_jobs, resources
from snowvault.interfaces.api import agent_actions
from snowvault.interfaces.api.asgi import RequestContext


class _App:
    def __init__(self, deps: Any) -> None:
        self.deps = deps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tree", type=Path)
    parser.add_argument("--profile", default="", help="actions to profile: out.pstats")
    parser.add_argument(
        "--packs-per-call",
        type=int,
        default=None,
        help="the agent's direct packs per AgentPutBlobs (agent/store.py: PACKS_PER_CALL)",
    )
    args = parser.parse_args()
    if args.packs_per_call:
        store.PACKS_PER_CALL = args.packs_per_call
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    os.environ["AWS_ENDPOINT_URL_S3"] = url
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    bucket = f"sv-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=url, region_name="us-east-1").create_bucket(Bucket=bucket)
    world = agent_world.make_world(Path(tempfile.mkdtemp()))
    world.deps.storage.regions["us-east-1"] = f"s3://{bucket}/vaults"
    world.vault("s3")
    profiled = set(filter(None, args.profile.split(",")))
    prof = cProfile.Profile(time.thread_time)
    cpu: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()
    who = agent_world.agent(world, "h1")

    class Api:
        def call(self, action: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
            body = json.loads(json.dumps(body))
            arn, now = who.principal_arn, world.clock.now()
            account = arn.split(":")[4]
            ctx = RequestContext("r", account, "us-east-1", "snowvault", arn, "k", "", now, "")
            start = time.thread_time()
            if action in profiled:
                prof.enable()
            out = agent_actions.ACTIONS[action](_App(world.deps), ctx, body)  # type: ignore[arg-type]
            if action in profiled:
                prof.disable()
            cpu[action] += time.thread_time() - start
            calls[action] += 1
            return dict(json.loads(json.dumps(out)))

    arn = resources.register(world.deps, world.root, resource_type="Directory", name="r",
                             source=str(args.tree), worker_label="agent:h1")["arn"]  # fmt: skip
    api = Api()
    for phase in ("first", "no change"):
        cpu.clear()
        calls.clear()
        backup_jobs.start(world.deps, world.root, backup_jobs.StartRequest("s3", str(arn), ROLE))
        job = api.call("AgentClaimJob", {})["Job"]
        options = runner.Options("in-process", "h1", "us-east-1", "k", "s", (str(args.tree),))
        blobs = store.RemoteBlobStore(api, job["JobId"], store.JobKeys.from_api(job["Keys"]))  # type: ignore[arg-type]
        state = runner.run_job(api, options, job, lambda _l: None, world.clock, blobs=blobs)  # type: ignore[arg-type]
        parts = ", ".join(f"{a} {calls[a]} calls {cpu[a]:.3f} s" for a in sorted(cpu))
        print(f"{phase}: {state}; server thread CPU {sum(cpu.values()):.3f} s: {parts}")
    server.stop()
    if profiled:
        prof.dump_stats("out.pstats")


if __name__ == "__main__":
    main()
