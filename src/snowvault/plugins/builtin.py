"""The resource types this server ships, registered in ONE place (restic's all.go).

Adding a type: write ``plugins/<type>.py`` implementing
:class:`snowvault.plugins.base.ResourcePlugin`, add it to the list below, and add it to
the contract test's plugins (tests/unit/plugins/test_plugin_contract.py).

Depends on the plugin modules only.
"""

from __future__ import annotations

from snowvault.plugins import block, composite, directory, mysql, postgresql, redis, s3, sqlite
from snowvault.plugins.registry import Registry


def registry() -> Registry:
    """A new registry of every built-in resource type (raises on a duplicate)."""
    return Registry(
        [
            directory.Directory(),
            postgresql.PostgreSQL(),
            mysql.MySQL(),
            sqlite.SQLite(),
            redis.Redis(),
            s3.S3(),
            block.BlockDevice(),
            composite.Composite(),
        ]
    )
