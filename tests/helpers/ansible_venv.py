"""The test-only Ansible in the git-ignored ``.venv-ansible/``, made from
``tests/ansible-requirements.txt`` and remade when that file changes (a stamp holds its
hash). tests/acceptance/test_ansible.py uses it; the suite's conftest starts making it in
the background when a session begins, so that the test finds it ready.

    seconds = ensure()                 # None: the venv was there; else seconds to make it
    python -m helpers.ansible_venv     # the same, from a shell (PYTHONPATH=tests)

Making it: ``pip install`` of every pin but ``ansible``; meanwhile the ``ansible`` sdist
(the one artifact that carries the amazon.aws collection WITH its integration targets)
is fetched from the package index as pip would find it (PEP 691 JSON, ``PIP_INDEX_URL``
or PyPI), checked against the sha256 pinned in the requirements, and only
``ansible_collections/amazon/aws/`` is unpacked into ``.venv-ansible/collections/``.
Not ``pip download --no-binary``: it builds the sdist's metadata first, 2-3 CPU-minutes
walking some 58,000 files the test never reads.

Network: the package index only. Concurrency: one builder at a time per venv (a file
lock), whether xdist workers, the background start or parallel sessions.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "tests" / "ansible-requirements.txt"
VENV = ROOT / ".venv-ansible"
STAMP = VENV / "snowvault-requirements.sha256"
COLLECTIONS = VENV / "collections"
COLLECTION = COLLECTIONS / "ansible_collections" / "amazon" / "aws"
TARGETS = COLLECTION / "tests" / "integration" / "targets"
SDIST_PACKAGE = "ansible"
INSTALL_TIMEOUT = 900
DEFAULT_INDEX = "https://pypi.org/simple"
SDIST_PIN = re.compile(
    rf"^{SDIST_PACKAGE}==(?P<version>[\w.]+)\s+--hash=sha256:(?P<sha256>[0-9a-f]{{64}})$"
)


@dataclass(frozen=True)
class Pins:
    pip: list[str]
    """What ``pip install`` gets: every pin but the sdist's."""
    sdist_version: str
    sdist_sha256: str


def pins() -> Pins:
    lines = (line.split("#", 1)[0].strip() for line in REQUIREMENTS.read_text().splitlines())
    found = [line for line in lines if line]
    sdist = [p for p in found if re.split(r"[=\s]", p, maxsplit=1)[0].lower() == SDIST_PACKAGE]
    match = SDIST_PIN.match(sdist[0]) if len(sdist) == 1 else None
    assert match, f"{REQUIREMENTS}: pin {SDIST_PACKAGE}==X --hash=sha256:Y once"
    return Pins([p for p in found if p not in sdist], match["version"], match["sha256"])


def digest() -> str:
    """The requirements' hash, as the stamp holds it."""
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()


def stamped(want: str) -> bool:
    try:
        return bool(json.loads(STAMP.read_text())["sha256"] == want)
    except (OSError, ValueError, KeyError):
        return False


def stamp_seconds() -> float | None:
    """How long the last build took (None: no stamp)."""
    try:
        return float(json.loads(STAMP.read_text())["seconds"])
    except (OSError, ValueError, KeyError):
        return None


@contextlib.contextmanager
def exclusive() -> Iterator[None]:
    """One builder at a time (xdist workers, the background start, parallel sessions)."""
    with lock_path().open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def lock_path() -> Path:
    name = hashlib.sha256(str(VENV).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"snowvault-venv-ansible-{name}.lock"


def ensure() -> float | None:
    """Make the venv unless it matches the requirements; the seconds it took, or None."""
    want = digest()
    with exclusive():
        if stamped(want):
            return None
        return _build(want)


def _build(want: str) -> float:
    started = time.monotonic()
    shutil.rmtree(VENV, ignore_errors=True)
    wanted = pins()
    _run(sys.executable, "-m", "venv", VENV)
    python = VENV / "bin" / "python"
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "--no-input"]
    install = subprocess.Popen(
        [*pip, "install", "--quiet", *wanted.pip],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:  # the sdist downloads and unpacks while pip installs
        with tempfile.TemporaryDirectory(prefix="sdist-", dir=VENV) as download:
            sdist = _fetch_sdist(wanted, Path(download))
            _unpack_collection(sdist)
        out, _ = install.communicate(timeout=INSTALL_TIMEOUT)
    finally:
        if install.poll() is None:
            install.kill()
            install.wait()
    assert install.returncode == 0, f"pip install {' '.join(wanted.pip)}:\n{out}"
    seconds = time.monotonic() - started
    STAMP.write_text(json.dumps({"sha256": want, "seconds": round(seconds, 1)}))
    return seconds


def _run(*cmd: str | Path) -> None:
    done = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
    )
    assert done.returncode == 0, f"{' '.join(map(str, cmd))}:\n{done.stdout}\n{done.stderr}"


def _fetch_sdist(wanted: Pins, into: Path) -> Path:
    """The pinned sdist from the index's JSON page (PEP 691), its sha256 checked."""
    index = os.environ.get("PIP_INDEX_URL", DEFAULT_INDEX).rstrip("/")
    page_url = f"{index}/{SDIST_PACKAGE}/"
    request = urllib.request.Request(
        page_url, headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        page = json.load(answer)
    filename = f"{SDIST_PACKAGE}-{wanted.sdist_version}.tar.gz"
    entries = [f for f in page["files"] if f["filename"] == filename]
    assert len(entries) == 1, f"{page_url} lists {len(entries)} files named {filename}"
    url = urllib.parse.urljoin(page_url, entries[0]["url"])
    target = into / filename
    sha = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=300) as answer, target.open("wb") as out:
        while block := answer.read(1 << 20):
            sha.update(block)
            out.write(block)
    assert sha.hexdigest() == wanted.sdist_sha256, (
        f"{url}: sha256 {sha.hexdigest()}, the requirements pin {wanted.sdist_sha256}"
    )
    return target


def _unpack_collection(sdist: Path) -> None:
    """``<top>/ansible_collections/amazon/aws/**`` of the sdist into :data:`COLLECTIONS`."""
    marker = "/ansible_collections/amazon/aws/"
    with tarfile.open(sdist) as tar:
        members = []
        for member in tar:
            _top, sep, rest = member.name.partition("/")
            if sep and f"/{rest}".startswith(marker):
                member.name = rest
                members.append(member)
        assert members, f"{sdist.name} holds no {marker}"
        tar.extractall(COLLECTIONS, members=members, filter="data")


def main() -> int:
    seconds = ensure()
    print("reused" if seconds is None else f"made {VENV} in {seconds:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
