"""Fakes shipped with the product for tests (ours and users'). Nothing in src imports this."""

from snowvault.testing.backends import FaultyBackend, LockingMemoryBackend
from snowvault.testing.clock import FakeClock

__all__ = ["FakeClock", "FaultyBackend", "LockingMemoryBackend"]
