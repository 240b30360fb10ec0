"""Alembic environment for the catalog: runs on the connection handed in by ``db.upgrade``.

Offline (SQL script) mode is not supported: snowvault always migrates a live database.
Must not depend on anything but the catalog's tables.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection

from snowvault.control.catalog import tables


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render the catalog's UTCDateTime as the plain column type it stores as."""
    if type_ == "type" and isinstance(obj, tables.UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=tables.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        compare_server_default=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    if context.is_offline_mode():
        raise RuntimeError("snowvault migrations run online only (db.upgrade)")
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("db.upgrade passes the connection in config.attributes")
    run_migrations(connection)


main()
