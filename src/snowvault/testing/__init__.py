"""Fakes shipped with the product for tests (ours and users'). Nothing in src imports this."""

from snowvault.testing.backends import FaultyBackend, LockingMemoryBackend
from snowvault.testing.clock import FakeClock
from snowvault.testing.repository import FakeRepository
from snowvault.testing.vault_keys import ServerVaultKeys

__all__ = [
    "FakeClock",
    "FakeRepository",
    "FaultyBackend",
    "LockingMemoryBackend",
    "ServerVaultKeys",
]
