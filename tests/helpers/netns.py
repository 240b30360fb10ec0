"""Another host for the agent tests, made of Linux namespaces (root only; the tests run
as root): a private mount namespace with its own tmpfs, whose files the server's
processes cannot see at all, and a network namespace joined to the root one by a veth
pair on a private /30 (10.213.x.y, nothing routed anywhere else), whose link a test can
cut and mend, and whose uplink it can slow down.

    with netns.Host.create(root=tmp / "host-root") as host:
        server = netns.VethServer(..., address=host.gateway)   # listens on the veth
        agent = host.popen([SNOWVAULT, "agent", "run", "--endpoint", server.endpoint, ...])
        host.run([sys.executable, "-c", "..."])                # sees host.root's tmpfs
        host.cut(); ...; host.mend()

Every name carries this process's id and a counter; :meth:`Host.close` removes the
namespaces, the veth pair and the process holding the mounts (not the processes a test
started inside: it ends those itself).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.sv_server import ServerProcess

_COUNTER = itertools.count()
SUBNET_PREFIX = "10.213"


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"ip {' '.join(args)}: {done.stderr.strip()}"


def _used_blocks() -> set[tuple[int, int]]:
    """The /30s of 10.213.0.0/16 (third octet, block of four) some address in the root
    namespace already sits in: another test process's hosts."""
    out = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True).stdout
    used = set()
    for word in out.split():
        if word.startswith(SUBNET_PREFIX + "."):
            third, fourth = word.split("/")[0].split(".")[2:4]
            used.add((int(third), int(fourth) // 4))
    return used


def _free_subnet() -> tuple[str, str]:
    """(gateway, address) of a /30 no one uses yet, searched from this process's id so
    parallel test processes start apart."""
    used = _used_blocks()
    start = os.getpid() % 250
    for k in range(250 * 64):
        third, block = (start + k // 64) % 250 + 1, k % 64
        if (third, block) not in used:
            stem = f"{SUBNET_PREFIX}.{third}"
            return f"{stem}.{block * 4 + 1}", f"{stem}.{block * 4 + 2}"
    raise AssertionError("no free /30 in 10.213.0.0/16")


_WRITE = """
import json, os, random, sys
root, rng, sizes = sys.argv[1], random.Random(int(sys.argv[2])), json.loads(sys.argv[3])
for i, size in enumerate(sizes):
    path = os.path.join(root, f"d{i % 4}", f"f{i}.bin")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(rng.randbytes(size))
"""
_DIGEST = """
import hashlib, json, os, sys
root, out = sys.argv[1], {}
for top, _, names in os.walk(root):
    for name in names:
        path = os.path.join(top, name)
        if os.path.isfile(path) and not os.path.islink(path):
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
print(json.dumps(out))
"""


@dataclass
class Host:
    """One simulated host: network namespace ``name`` (its side of the veth ``inner``
    at ``address``, the root side ``outer`` at ``gateway``) and a process holding a
    private mount namespace inside it where ``root`` is a tmpfs."""

    name: str
    outer: str
    inner: str
    gateway: str
    address: str
    root: Path
    holder: subprocess.Popen[bytes] | None = None
    cuts: int = 0

    @classmethod
    def create(cls, root: Path, tmpfs_size: str = "512m") -> Host:
        """Make the namespaces; ``root`` (an empty directory) becomes a tmpfs that only
        processes started through :meth:`popen` / :meth:`run` see."""
        n = next(_COUNTER)
        pid = os.getpid()
        gateway, address = _free_subnet()
        host = cls(f"svhost-{pid}-{n}", f"svo{pid}n{n}", f"svi{pid}n{n}", gateway, address, root)
        root.mkdir(parents=True, exist_ok=True)
        try:
            host._make_network()
            host._hold_mounts(tmpfs_size)
        except BaseException:
            host.close()
            raise
        return host

    def _make_network(self) -> None:
        _ip("netns", "add", self.name)
        _ip("link", "add", self.outer, "type", "veth", "peer", "name", self.inner)
        _ip("link", "set", self.inner, "netns", self.name)
        _ip("addr", "add", f"{self.gateway}/30", "dev", self.outer)
        _ip("link", "set", self.outer, "up")
        _ip("-n", self.name, "addr", "add", f"{self.address}/30", "dev", self.inner)
        _ip("-n", self.name, "link", "set", self.inner, "up")
        _ip("-n", self.name, "link", "set", "lo", "up")

    def _hold_mounts(self, size: str) -> None:
        script = (
            f'mount -t tmpfs -o size={size},mode=0755 svhost "$1" && echo ready && '
            "exec sleep 1000000"
        )
        self.holder = subprocess.Popen(
            ["ip", "netns", "exec", self.name, "unshare", "--mount", "--propagation",
             "private", "--", "sh", "-c", script, "sh", str(self.root)],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        assert self.holder.stdout is not None
        line = self.holder.stdout.readline()
        assert line.strip() == b"ready", f"the host's mounts failed: {line!r}"

    def _enter(self, argv: list[str]) -> list[str]:
        assert self.holder is not None
        return ["nsenter", "-t", str(self.holder.pid), "-m", "-n", "--", *argv]

    def popen(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """Start ``argv`` on this host (its mounts, its network)."""
        return subprocess.Popen(self._enter(argv), **kwargs)

    def run(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` on this host; it must succeed; its output as text."""
        done = subprocess.run(
            self._enter(argv), capture_output=True, text=True, timeout=120, **kwargs
        )
        assert done.returncode == 0, f"{argv} on {self.name}: {done.stderr[-2000:]}"
        return done

    def write_files(self, path: Path, seed: int, sizes: list[int]) -> None:
        """Seeded random files ``path/d{i % 4}/f{i}.bin`` of ``sizes``, written on this
        host (the server's namespace never holds them)."""
        self.run([sys.executable, "-c", _WRITE, str(path), str(seed), json.dumps(sizes)])

    def digest(self, path: Path) -> dict[str, str]:
        """Every regular file under ``path`` on this host: relative path -> SHA-256."""
        out = self.run([sys.executable, "-c", _DIGEST, str(path)]).stdout
        digest: dict[str, str] = json.loads(out)
        return digest

    def mount_namespace(self) -> str:
        assert self.holder is not None
        return os.readlink(f"/proc/{self.holder.pid}/ns/mnt")

    def cut(self) -> None:
        """Take the root side of the link down: packets to and from the host are lost
        silently (no reset, no unreachable answer), as on a cut cable."""
        _ip("link", "set", self.outer, "down")
        self.cuts += 1

    def mend(self) -> None:
        _ip("link", "set", self.outer, "up")

    def shape(self, rate: str, *, down: bool = False) -> None:
        """Slow the host's uplink (``down``: its downlink) to ``rate`` (tc's token
        bucket, e.g. "16mbit"), so a backup (a restore) lasts long enough to be cut in
        its middle."""
        where = ["tc"] if down else ["ip", "netns", "exec", self.name, "tc"]
        device = self.outer if down else self.inner
        subprocess.run(
            [*where, "qdisc", "replace", "dev", device, "root", "tbf", "rate", rate,
             "burst", "64kb", "latency", "2s"],
            check=True, timeout=30,
        )  # fmt: skip

    def unshape(self) -> None:
        for where, device in ((["ip", "netns", "exec", self.name, "tc"], self.inner),
                              (["tc"], self.outer)):  # fmt: skip
            subprocess.run(
                [*where, "qdisc", "del", "dev", device, "root"], capture_output=True, timeout=30
            )

    def close(self) -> None:
        if self.holder is not None and self.holder.poll() is None:
            self.holder.kill()
            self.holder.wait(timeout=20)
        if self.holder is not None and self.holder.stdout is not None:
            self.holder.stdout.close()
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "del", self.outer], capture_output=True, timeout=30)

    def __enter__(self) -> Host:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class VethServer(ServerProcess):
    """A test server listening on ``address`` (a host's gateway) instead of 127.0.0.1;
    the snowvault CLI run as its user is pointed there too (AWS_ENDPOINT_URL)."""

    address: str = "127.0.0.1"

    @property
    def endpoint(self) -> str:
        return f"http://{self.address}:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return super().env | {"AWS_ENDPOINT_URL": self.endpoint}

    def listen_on_address(self) -> None:
        """After :meth:`init`: make the config listen on ``address``."""
        path = self.data_dir / "config.json"
        config = json.loads(path.read_text())
        config["host"] = self.address
        path.write_text(json.dumps(config))
