"""``snowvault repo``: offline tools over one vault repository (disaster recovery)."""

from __future__ import annotations

import click


@click.group()
def repo() -> None:
    """Work on a vault repository directly, without the server."""
