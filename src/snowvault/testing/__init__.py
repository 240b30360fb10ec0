"""Fakes shipped with the product for tests (ours and users'). Nothing in src imports this."""

from snowvault.testing.clock import FakeClock

__all__ = ["FakeClock"]
