"""What the server judges of a resource on an agent's host and of a restore there
(services/agent_resources.py, docs/design/agents.md): the form only, secrets split off
as on the server, nothing looked at on the server's host; the agent judges the rest.
"""

from __future__ import annotations

import pytest

from snowvault import plugins
from snowvault.control.model import host_paths
from snowvault.control.services import agent_resources
from snowvault.core.errors import InvalidInput

REGISTRY = plugins.builtin.registry()


def _check(rtype: str, source: str, **props: str) -> plugins.base.Registration:
    return agent_resources.check_registration(REGISTRY, rtype, source, props)


def test_network_sources_keep_their_secrets_apart_whatever_the_servers_networks() -> None:
    pg = _check("PostgreSQL", "postgresql://backup:pw1@10.20.30.40:5432/shop")
    assert pg.secrets == {"password": "pw1"} and "pw1" not in pg.source
    assert "10.20.30.40" in pg.source  # outside the server's loopback-only rule: the agent judges
    my = _check("MySQL", "mysql://root@192.168.7.8:3306", password="pw2", databases="a,b")
    assert my.secrets == {"password": "pw2"} and "pw2" not in repr(my.properties)
    rd = _check("Redis", "redis://:pw3@127.0.0.1:6390")
    assert rd.secrets == {"password": "pw3"} and "pw3" not in rd.source
    s3 = _check(
        "S3", "s3://bucket/prefix", endpoint="http://10.0.0.9:9000",
        access_key_id="AK", secret_access_key="pw4",
    )  # fmt: skip
    assert s3.secrets == {"secret_access_key": "pw4"} and "pw4" not in repr(s3.properties)


def test_path_sources_are_folded_never_looked_up() -> None:
    assert _check("SQLite", "/srv//db/../app.sqlite").source == "/srv/app.sqlite"
    assert _check("BlockDevice", "/dev/vg0/snap").source == "/dev/vg0/snap"
    with pytest.raises(host_paths.InvalidHostPath):
        _check("SQLite", "relative.sqlite")
    with pytest.raises(InvalidInput, match="takes no Properties"):
        _check("BlockDevice", "/dev/sdb", extra="1")


def test_what_an_agent_cannot_hold_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not Composite"):
        _check("Composite", "group:g", members="[]")
    with pytest.raises(InvalidInput, match="passfile"):
        _check("PostgreSQL", "postgresql://backup@127.0.0.1:5432/x", passfile="/root/.pgpass")
    with pytest.raises(InvalidInput):  # a malformed DSN is refused by the plugin's own parser
        _check("PostgreSQL", "mysql://root@127.0.0.1")


def test_restore_metadata_is_checked_for_form() -> None:
    form = agent_resources.check_restore_form
    form(REGISTRY, "SQLite", {"targetPath": "/srv/restored.sqlite"})
    form(REGISTRY, "Redis", {"targetUrl": "redis://10.0.0.5:6379"})
    form(REGISTRY, "PostgreSQL", {"targetDirectory": "/srv/pg"})
    form(REGISTRY, "MySQL", {"targetDsn": "mysql://root@10.1.1.1:3306", "databases": "a"})
    with pytest.raises(plugins.errors.InvalidRestoreTarget, match="required"):
        form(REGISTRY, "BlockDevice", {})
    with pytest.raises(plugins.errors.InvalidRestoreTarget, match="absolute"):
        form(REGISTRY, "PostgreSQL", {"targetDirectory": "pg"})
    with pytest.raises(InvalidInput):
        form(REGISTRY, "MySQL", {})  # targetDsn is required by the plugin
