"""Vault Lock, legal holds and IAM users/policies beyond the initial schema (the access issue).

Tables here join the one tables.metadata; migration 0004 creates them.
"""

from __future__ import annotations

from snowvault.control.catalog import tables  # noqa: F401  (tables.metadata)
