"""Helpers for the engine's safety tests: the real CLI in a subprocess, trees, repositories.

``Cli`` runs ``snowvault`` as a child process (the code path a user hits, with its error
translation and exit codes); ``make_small_repo`` makes a repository through the Python API
with a small chunker and pack size, so a few hundred KiB of files spread over many packs.
Imported by the tests of this directory (like catalog_helpers); no network.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snowvault.engine.backends.local import LocalBackend
from snowvault.engine.chunker import ChunkerParams
from snowvault.engine.crypto import KdfParams
from snowvault.engine.repository import Repository

PASSWORD = "correct horse battery staple"
SMALL_CHUNKER = ChunkerParams(min_size=1024, avg_size=4096, max_size=16384)
SMALL_PACK = 64 * 1024
CLI = [sys.executable, "-m", "snowvault.interfaces.cli.main"]


@dataclass
class Cli:
    """Runs ``snowvault`` with a fixed environment; ``repo(...)`` adds ``--repo URL``."""

    cwd: Path
    env: dict[str, str] = field(default_factory=dict)

    def run(
        self, *args: str, expect: int | None = 0, timeout: float = 120, stdin: bytes = b""
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*CLI, *args],
            cwd=self.cwd,
            env=self.env,
            input=stdin.decode(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if expect is not None and proc.returncode != expect:
            raise AssertionError(
                f"snowvault {' '.join(args)} exited {proc.returncode}, want {expect}\n"
                f"stdout: {proc.stdout[-3000:]}\nstderr: {proc.stderr[-3000:]}"
            )
        return proc

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*CLI, *args],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def json(self, *args: str, expect: int | None = 0) -> Any:
        """Run with ``--json`` and return the last JSON line of stdout (the result)."""
        proc = self.run(*args, "--json", expect=expect)
        return last_json(proc.stdout)

    def backup(self, repo: str, *paths: str, expect: int | None = 0) -> dict[str, Any]:
        doc = self.json("repo", "backup", "--repo", repo, *paths, expect=expect)
        assert isinstance(doc, dict) and doc.get("message_type") == "summary", doc
        return doc


def last_json(stdout: str) -> Any:
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert lines, "no output"
    return json.loads(lines[-1])


def json_lines(stdout: str) -> list[Any]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def assert_clean_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """A failed command said why in one line on stderr, with no traceback."""
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def cli_env() -> dict[str, str]:
    """The test process's environment without snowvault/AWS settings, plus the passphrase."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SNOWVAULT_", "AWS_"))}
    env["SNOWVAULT_PASSWORD"] = PASSWORD
    return env


# ---------------------------------------------------------------- trees


def init_kill_repo(repo_dir: Path, pack_size: int) -> None:
    """A repository for the kill tests: fast KDF, small chunks (128 KiB-2 MiB) and
    small packs, so a backup or restore of a few MiB crosses many of each."""
    Repository.init(
        LocalBackend(str(repo_dir)),
        password=PASSWORD,
        kdf=KdfParams.for_tests(),
        chunker=ChunkerParams(min_size=128 * 1024, avg_size=512 * 1024, max_size=2 * 1024 * 1024),
        pack_size=pack_size,
    ).close()


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def read_tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def sample_files(seed: int) -> dict[str, bytes]:
    """Several files: small ones, and multi-chunk ones (half random, half compressible)."""
    rng = random.Random(seed)
    files = {f"small/s{i}.txt": f"small file {i} of set {seed}\n".encode() * 10 for i in range(6)}
    for i in range(4):
        noise = rng.randbytes(40_000 + 9_000 * i)
        files[f"big/b{i}.bin"] = noise + bytes(rng.randrange(4)) * 20_000
    files["deep/a/b/c/leaf.dat"] = rng.randbytes(25_000)
    return files


# ---------------------------------------------------------------- repositories


def make_small_repo(path: Path) -> str:
    """A repository at ``path`` with a small chunker and packs (CLI-openable with PASSWORD)."""
    Repository.init(
        LocalBackend(str(path)),
        password=PASSWORD,
        kdf=KdfParams.for_tests(),
        chunker=SMALL_CHUNKER,
        pack_size=SMALL_PACK,
    ).close()
    return str(path)


def make_writable(path: Path) -> None:
    """Objects are stored read-only (0o400); tests that damage them lift that first."""
    for p in path.rglob("*"):
        if p.is_file():
            p.chmod(0o644)
