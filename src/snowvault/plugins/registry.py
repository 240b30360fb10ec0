"""The registry of resource types: ResourceType -> plugin, built explicitly in one place
(:func:`snowvault.plugins.builtin.registry`), never filled by import side effects.

    reg = Registry([directory.Directory()])
    reg.types()                 # ('Directory',)
    reg.get("Directory")        # the plugin; UnsupportedResourceType for anything else
    Registry([Directory(), Directory()])   # ValueError: registered twice

Depends on the plugin base and errors only.
"""

from __future__ import annotations

from collections.abc import Iterable

from snowvault.plugins.base import ResourcePlugin
from snowvault.plugins.errors import UnsupportedResourceType


class Registry:
    """An immutable map of resource types to plugins, in registration order."""

    def __init__(self, plugins: Iterable[ResourcePlugin]) -> None:
        self._by_type: dict[str, ResourcePlugin] = {}
        kinds: dict[str, str] = {}
        for plugin in plugins:
            name, kind = plugin.type_name, plugin.arn_kind
            if name in self._by_type:
                raise ValueError(f"resource type {name!r} is registered twice")
            if kind in kinds:
                raise ValueError(f"ARN kind {kind!r} of {name!r} is taken by {kinds[kind]!r}")
            self._by_type[name] = plugin
            kinds[kind] = name

    def types(self) -> tuple[str, ...]:
        """The supported ResourceType names (GetSupportedResourceTypes)."""
        return tuple(self._by_type)

    def __contains__(self, resource_type: object) -> bool:
        return resource_type in self._by_type

    def get(self, resource_type: str) -> ResourcePlugin:
        """The plugin for ``resource_type``; UnsupportedResourceType when none is."""
        try:
            return self._by_type[resource_type]
        except (KeyError, TypeError):
            supported = ", ".join(self._by_type) or "none"
            raise UnsupportedResourceType(
                resource_type=resource_type, supported=supported
            ) from None
