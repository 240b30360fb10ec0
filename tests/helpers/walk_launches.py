"""Counting the walk workers a backup launches (engine/walk_workers.py), for the tests of
when they start: the default on, two cores, no walking of queued subtrees by the backup's
own process (the worker walks what it gets), and every ``_launch`` recorded."""

from __future__ import annotations

from typing import Any

import pytest

from snowvault.engine import walk_workers


def count_launches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that gets a 1 per worker launched while ``monkeypatch`` is active."""
    monkeypatch.delenv("SNOWVAULT_ENGINE_WALKERS", raising=False)
    monkeypatch.setattr(walk_workers, "DEFAULT_ON", True)
    monkeypatch.setattr(walk_workers, "cores", lambda: 2)
    monkeypatch.setattr(walk_workers, "TAKE_BACK", False)
    launched: list[int] = []
    real = walk_workers._launch

    def counting(init: tuple[Any, ...]) -> Any:
        launched.append(1)
        return real(init)

    monkeypatch.setattr(walk_workers, "_launch", counting)
    return launched
