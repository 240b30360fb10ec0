"""Cold storage bookkeeping: which vaults have recovery points that turned COLD since
their packs were last moved (``lifecycle_runs`` against ``cold_moves``), the cold
points of a vault, and the mark a move leaves.

Must not depend on anything above ``snowvault.core``.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from snowvault.control.catalog.db import is_sqlite
from snowvault.control.catalog.tables import cold_moves as cm
from snowvault.control.catalog.tables import lifecycle_runs as lr
from snowvault.control.catalog.tables import recovery_points as rp


def vaults_to_move(
    conn: Connection, *, recheck_before: datetime | None = None, limit: int = 100
) -> list[str]:
    """Vaults where a point moved to COLD after the vault's last cold move (or ever), or
    whose last move was before ``recheck_before`` (a prune may have repacked cold data
    into warm since)."""
    stmt = (
        sa.select(lr.c.backup_vault_arn)
        .select_from(lr.outerjoin(cm, cm.c.vault_arn == lr.c.backup_vault_arn))
        .where(
            lr.c.action == "COLD",
            lr.c.status == "COMPLETED",
            lr.c.backup_vault_arn.is_not(None),
            sa.or_(
                cm.c.moved_at.is_(None),
                lr.c.completed_at > cm.c.moved_at,
                sa.false() if recheck_before is None else cm.c.moved_at < recheck_before,
            ),
        )
        .distinct()
        .order_by(lr.c.backup_vault_arn)
        .limit(limit)
    )
    return [str(arn) for arn in conn.execute(stmt).scalars()]


def cold_points(conn: Connection, vault_arn: str) -> list[str]:
    """The engine ids (manifests) of the vault's COLD recovery points."""
    stmt = sa.select(rp.c.engine_recovery_point_id).where(
        rp.c.backup_vault_arn == vault_arn,
        rp.c.storage_class == "COLD",
        rp.c.engine_recovery_point_id.is_not(None),
    )
    return sorted(str(i) for i in conn.execute(stmt).scalars())


def mark_moved(conn: Connection, vault_arn: str, when: datetime) -> None:
    insert = sqlite.insert(cm) if is_sqlite(conn) else postgresql.insert(cm)
    stmt = insert.values(vault_arn=vault_arn, moved_at=when)
    conn.execute(stmt.on_conflict_do_update(index_elements=["vault_arn"], set_={"moved_at": when}))
