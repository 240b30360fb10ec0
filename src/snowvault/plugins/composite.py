"""Composite: a group of registered resources backed up together, AWS's composite
(parent) recovery point with one nested (child) recovery point per member.

A resource is ``arn:aws:snowvault:REGION:ACCOUNT:group/NAME``; its source is
``group:NAME``; its one property ``members`` is a JSON list of 1..30 member ARNs
(``snowvault resource add group --name app --member ARN --member ARN``)::

    Composite().check_source("group:app", policy, {"members": '["arn:...:directory/a"]'})
    # Registration(source="group:app", properties={"members": '["arn:...:directory/a"]'})

What this plugin can judge alone, it judges: the list's shape, 1..30 distinct
snowvault ARNs of one account and region, no group among them (a group does not nest).
What it cannot see (are the members registered, in the caller's account, of a type
this server protects?) the services check against the catalog
(:mod:`snowvault.control.services.composite`), which also runs the group's backup: one
parent job fanning out to one child job per member, each backed up by its own type's
plugin. So :meth:`Composite.backup` and :meth:`Composite.restore` are never called by
the services and refuse if they are.

Restore Metadata of a parent point: ``<member>.<key>`` for each member to restore,
``<member>`` being the child's CompositeMemberIdentifier (``directory/photos``) and
``<key>`` one of the member type's own keys (``directory/photos.targetPath``). The
services split and hand each part to the member's plugin.

Abuse case: a caller with ``RegisterResource`` names other resources, not host paths or
hosts: the members' own plugins judge their sources (registered before, checked again
in the worker); the services refuse a member of another account or region, or one not
registered, so a group never reaches what its caller could not back up directly.

Depends on the plugin base and errors and core only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from snowvault.control.model import host_paths
from snowvault.core import arn as arns
from snowvault.core.errors import InvalidInput
from snowvault.plugins.base import (
    BackupRequest,
    MetadataKey,
    Registration,
    Resource,
    RestoreRequest,
)
from snowvault.plugins.errors import InvalidRestoreTarget

TYPE_NAME = "Composite"
ARN_KIND = "group"
MAX_MEMBERS = 30
SOURCE_PREFIX = "group:"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_MEMBER_RE = re.compile(r"^[a-z0-9-]+/[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def parse_members(raw: str | Sequence[str] | None) -> list[str]:
    """The members property as a list of ARNs: a JSON list (as stored) or a list.

    >>> parse_members('["arn:aws:snowvault:us-east-1:111122223333:directory/a"]')
    ['arn:aws:snowvault:us-east-1:111122223333:directory/a']
    """
    if raw is None or raw == "":
        raise InvalidInput(detail="a Composite needs Properties.members: a JSON list of ARNs")
    value: Any = raw
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError):  # nested past the recursion limit
            raise InvalidInput(detail="Properties.members is not a JSON list of ARNs") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(detail="Properties.members must be a JSON list of ARN strings")
    return list(value)


def member_identifier(member_arn: str) -> str:
    """A member's CompositeMemberIdentifier: its ARN's resource part, unique in a group.

    >>> member_identifier("arn:aws:snowvault:us-east-1:111122223333:directory/photos")
    'directory/photos'
    """
    return arns.Arn.parse(member_arn).resource


def check_members(members: Sequence[str]) -> list[str]:
    """1..30 distinct snowvault resource ARNs of one account and region, no group."""
    if not 1 <= len(members) <= MAX_MEMBERS:
        raise InvalidInput(detail=f"a Composite has 1 to {MAX_MEMBERS} members, got {len(members)}")
    seen: set[str] = set()
    places: set[tuple[str, str]] = set()
    for member in members:
        parsed = arns.Arn.parse(member)
        if parsed.service != "snowvault" or not _MEMBER_RE.match(parsed.resource):
            raise InvalidInput(detail=f"member {member!r} is not a snowvault resource ARN")
        if parsed.resource_type == ARN_KIND:
            raise InvalidInput(detail=f"member {member!r} is a group; groups do not nest")
        if member in seen:
            raise InvalidInput(detail=f"member {member!r} is named twice")
        seen.add(member)
        places.add((parsed.region, parsed.account))
    if len(places) > 1:
        raise InvalidInput(detail="the members of a group belong to one account and region")
    return list(members)


def split_metadata(metadata: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """A parent point's restore Metadata, per member identifier.

    >>> split_metadata({"directory/a.targetPath": "/r/a", "directory/b.x": "1"})
    {'directory/a': {'targetPath': '/r/a'}, 'directory/b': {'x': '1'}}
    """
    out: dict[str, dict[str, str]] = {}
    for key, value in metadata.items():
        member, dot, name = key.rpartition(".")
        if not dot or not member or not name:
            raise InvalidRestoreTarget(
                "Metadata of a group point: keys are <member>.<key> "
                f"(e.g. directory/photos.targetPath), got {key!r}"
            )
        out.setdefault(member, {})[name] = value
    return out


class Composite:
    """The Composite resource type (see the module docstring)."""

    type_name: str = TYPE_NAME
    arn_kind: str = ARN_KIND
    restore_keys: tuple[MetadataKey, ...] = (
        MetadataKey(
            "<member>.<key>",
            True,
            "a member type's restore key for the member <member> (its "
            "CompositeMemberIdentifier, e.g. directory/photos.targetPath); members "
            "without a key are not restored",
        ),
    )

    def check_source(
        self, source: str, policy: host_paths.Policy, properties: Mapping[str, str] | None = None
    ) -> Registration:
        """``group:NAME`` and the checked, canonical members list (services check the
        catalog side); no other Properties."""
        props = dict(properties or {})
        name = source.removeprefix(SOURCE_PREFIX) if source.startswith(SOURCE_PREFIX) else ""
        if not _NAME_RE.match(name):
            raise InvalidInput(detail=f"a Composite's Source is group:NAME, got {source!r}")
        extra = sorted(set(props) - {"members"})
        if extra:
            raise InvalidInput(detail=f"a Composite takes only Properties.members, got {extra}")
        members = check_members(parse_members(props.get("members")))
        return Registration(SOURCE_PREFIX + name, {"members": json.dumps(members)})

    def describe(self, resource: Resource, policy: host_paths.Policy) -> dict[str, Any]:
        try:
            return {"Members": parse_members(resource.properties.get("members"))}
        except InvalidInput as exc:
            return {"Error": str(exc)}

    def backup(self, request: BackupRequest) -> None:
        raise InvalidInput(detail="a group is backed up by the services, member by member")

    def check_restore(self, metadata: Mapping[str, str], policy: host_paths.Policy) -> None:
        if not split_metadata(metadata):
            raise InvalidRestoreTarget(
                "Metadata of a group point names no member to restore "
                "(keys are <member>.<key>, e.g. directory/photos.targetPath)"
            )

    def restore(self, request: RestoreRequest) -> None:
        raise InvalidInput(detail="a group point is restored by the services, child by child")

    def restore_defaults(self, resource: Resource | None) -> dict[str, str]:
        return {}  # the services fill in each member's own defaults, prefixed

    def validate_restore(self, request: RestoreRequest) -> str | None:
        return None
