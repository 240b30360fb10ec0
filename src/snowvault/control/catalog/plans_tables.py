"""Backup plans, plan versions, selections and scheduler occurrences (the plans issue).

Tables here join the one tables.metadata; migration 0002 creates them.
"""

from __future__ import annotations

from snowvault.control.catalog import tables  # noqa: F401  (tables.metadata)
