"""Fixtures for the engine's safety tests (helpers live in engine_helpers.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from helpers.engine_cli import PASSWORD, Cli, cli_env
from snowvault.engine.backends.local import LocalBackend
from snowvault.engine.repository import Repository


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path, cli_env())


@pytest.fixture(scope="module")
def module_cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return Cli(tmp_path_factory.mktemp("cli"), cli_env())


@pytest.fixture
def open_repo() -> Iterator[Callable[[str], Repository]]:
    """Open repositories through the Python API; all are closed at teardown."""
    opened: list[Repository] = []

    def _open(path: str) -> Repository:
        repo = Repository.open(LocalBackend(path), password=PASSWORD)
        opened.append(repo)
        return repo

    yield _open
    for repo in opened:
        repo.close()
