"""KMS keys, key versions and aliases (the keys issue).

Tables here join the one tables.metadata; migration 0003 creates them.
"""

from __future__ import annotations

from snowvault.control.catalog import tables  # noqa: F401  (tables.metadata)
