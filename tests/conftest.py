"""Shared fixtures: deterministic clock, a local S3 server (moto) on 127.0.0.1; and at
the start of a session that will run tests/acceptance/test_ansible.py, its test-only
Ansible venv begins to be made in the background (:func:`pytest_sessionstart`)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from helpers import ansible_venv
from snowvault.testing import FakeClock

ANSIBLE_TESTS = ansible_venv.ROOT / "tests" / "acceptance" / "test_ansible.py"
_VENV_BUILD = pytest.StashKey[subprocess.Popen[bytes]]()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Start making ``.venv-ansible/`` in a process of its own when the session's paths
    include test_ansible.py and the venv is missing or stale: its fixture then waits on
    the build's lock instead of building while its worker idles. In the controller (or
    a run without xdist) only, once per session."""
    config = session.config
    if hasattr(config, "workerinput") or not _selects(config, ANSIBLE_TESTS):
        return
    if ansible_venv.stamped(ansible_venv.digest()):
        return
    log = ansible_venv.lock_path().with_suffix(".log")
    with log.open("wb") as out:  # the fixture reports a failure: it builds again itself
        config.stash[_VENV_BUILD] = subprocess.Popen(
            [sys.executable, ansible_venv.__file__],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The background build outlives no session (a stopped build leaves no stamp)."""
    build = session.config.stash.get(_VENV_BUILD, None)
    if build is not None and build.poll() is None:
        os.killpg(build.pid, signal.SIGKILL)
        build.wait()


def _selects(config: pytest.Config, test_file: Path) -> bool:
    """Whether one of the session's path arguments is ``test_file`` or a folder above it."""
    for arg in config.args:
        path = (config.invocation_params.dir / arg.split("::", 1)[0]).resolve()
        if path == test_file or path in test_file.parents:
            return True
    return False


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 1, 1, tzinfo=UTC))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A moto S3 server on loopback; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
