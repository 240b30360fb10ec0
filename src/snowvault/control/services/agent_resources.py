"""What the server can judge of a resource on an agent's host, and of a restore there
(issue 13, docs/design/agents.md): the form only, since it cannot see that host.

    reg = agent_resources.check_registration(registry, "PostgreSQL", dsn, {"password": pw})
    reg.source, reg.secrets          # the DSN without its password; {"password": pw}
    agent_resources.check_restore_form(registry, "SQLite", {"targetPath": "/srv/x.db"})

Who asks: a principal allowed ``RegisterResource`` naming ``WorkerLabel agent:HOST``
(``resource add ... --host HOST``), or ``StartRestoreJob`` of such a resource's point.
What it reaches: nothing on the server's host. The path types (Directory, SQLite,
BlockDevice) keep their path folded lexically (never resolved here: a symlink on the
server says nothing about the agent's host); the network types (PostgreSQL, MySQL,
Redis, S3) go through their own plugin's ``check_source`` so the password or secret key
is split off and sealed exactly as on the server, with every network allowed (the
agent judges the host by its own ``--allow-network`` rule right before it connects; the
server's ``allowed_networks`` describe the server's reach, not the agent's). A name is
still looked up once here (the plugin's check resolves it): a host name only the
agent's host resolves is refused; use an address. A ``passfile`` (a file on the agent's
host) is refused: give the password, which is sealed.

Restores: path keys (``targetPath``, ``targetDirectory``, ``targetPassfile``) must be
absolute without NUL; Metadata without one is checked by the plugin with every network
allowed (a DSN's form, the keys it knows). The agent checks it all again, now, with its
own rules, and a refusal there ends the job FAILED with one line.

Depends on the plugins and the model only (no catalog, no engine).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping

from snowvault import plugins
from snowvault.control.model import host_paths
from snowvault.core.errors import InvalidInput

PATH_TYPES = frozenset({"Directory", "SQLite", "BlockDevice"})
NETWORK_TYPES = frozenset({"PostgreSQL", "MySQL", "Redis", "S3"})
AGENT_TYPES = PATH_TYPES | NETWORK_TYPES
"""What an agent backs up and restores (composite groups are not on agents yet)."""
PATH_KEYS = ("targetPath", "TargetPath", "targetDirectory", "targetPassfile")

ANY_NETWORK = host_paths.Policy(networks=host_paths.networks_of(["0.0.0.0/0", "::/0"]))
"""No host path allowed, every network: the form of a network source, judged here."""


def check_registration(
    registry: plugins.registry.Registry,
    resource_type: str,
    source: str,
    properties: Mapping[str, str] | None,
) -> plugins.base.Registration:
    """The source, properties and secrets of a resource on an agent's host as they are
    stored; InvalidInput for a type agents do not run or a malformed source."""
    if resource_type not in AGENT_TYPES:
        raise InvalidInput(
            detail=f"only {', '.join(sorted(AGENT_TYPES))} resources can live on an agent's "
            f"host, not {resource_type}"
        )
    props = dict(properties or {})
    if resource_type in PATH_TYPES:
        if props:
            raise InvalidInput(detail=f"a {resource_type} takes no Properties")
        return plugins.base.Registration(host_paths.resolve(source, posixpath.normpath))
    if props.get("passfile"):
        raise InvalidInput(
            detail="passfile names a file on the agent's host, which the server cannot "
            "check; give the password instead (it is sealed)"
        )
    return registry.get(resource_type).check_source(source, ANY_NETWORK, props)


def check_restore_form(
    registry: plugins.registry.Registry, resource_type: str, metadata: Mapping[str, str]
) -> None:
    """Refuse restore Metadata of an agent's point whose form is wrong (before any job);
    the agent judges the rest on its host."""
    paths = [metadata[k] for k in PATH_KEYS if metadata.get(k)]
    for path in paths:
        if not path.startswith("/"):
            raise plugins.errors.InvalidRestoreTarget(path=path, detail="must be an absolute path")
        if "\x00" in path:
            raise plugins.errors.InvalidRestoreTarget(path=path, detail="contains a NUL byte")
        if ".." in path.split("/"):
            # snowvault:Path folds '..' lexically, the host's kernel after any symlink
            # before it: the condition and the agent would see two different paths
            raise plugins.errors.InvalidRestoreTarget(path=path, detail="must not contain '..'")
    if resource_type in PATH_TYPES and not paths:
        raise plugins.errors.InvalidRestoreTarget(
            "Metadata.targetPath is required (an absolute path on the agent's host)"
        )
    if resource_type in NETWORK_TYPES and not paths:
        registry.get(resource_type).check_restore(metadata, ANY_NETWORK)
