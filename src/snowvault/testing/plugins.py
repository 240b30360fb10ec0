"""InMemoryPlugin: a resource type whose resources are byte strings in a dict, for tests
of everything around plugins (jobs, selections, settings) without touching the host.

    objects = {"greeting": b"hello"}
    deps = dataclasses.replace(deps, plugins=Registry([Directory(), InMemoryPlugin(objects)]))
    resources.register(deps, caller, resource_type="InMemory", name="g", source="greeting")
    # ... back up, then restore with Metadata {"targetName": "copy"}: objects["copy"] == b"hello"

It passes the same contract tests as Directory (tests/unit/services/test_plugin_contract.py)
and is the smallest example of the protocol: one module, one registry line, its tests.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping

from snowvault.control.model import host_paths
from snowvault.core.errors import InvalidInput, NotFound
from snowvault.plugins.base import (
    BackupRequest,
    MetadataKey,
    Progress,
    Resource,
    RestoreRequest,
)
from snowvault.plugins.errors import InvalidRestoreTarget

ENTRY = "object"
"""The name of the one file a recovery point of this type holds."""


class InMemoryPlugin:
    """Resources are keys of ``objects``; a restore writes ``objects[targetName]``.
    ``check`` (optional) is the after-restore validation: restored bytes -> a problem
    sentence or None."""

    type_name: str = "InMemory"
    arn_kind: str = "inmemory"
    restore_keys: tuple[MetadataKey, ...] = (
        MetadataKey("targetName", True, "the key to restore the object under"),
        MetadataKey("overwrite", False, '"true" to replace an existing object'),
    )

    def __init__(
        self,
        objects: dict[str, bytes] | None = None,
        check: Callable[[bytes], str | None] | None = None,
    ) -> None:
        self.objects = objects if objects is not None else {}
        self.check = check

    def check_source(self, source: str, policy: host_paths.Policy) -> str:
        if source not in self.objects:
            raise InvalidInput(detail=f"Source {source!r} is not an object of this store")
        return source

    def backup(self, request: BackupRequest) -> None:
        data = self.objects.get(request.resource.source)
        if data is None:
            raise NotFound(kind="object", name=request.resource.source)
        request.progress(Progress(0, len(data)))

        def on_progress(p: Progress) -> None:
            request.progress(Progress(p.bytes_done, len(data)))

        request.sink.stream(ENTRY, io.BytesIO(data), on_progress)

    def _target(self, metadata: Mapping[str, str]) -> str:
        name = metadata.get("targetName")
        if not name:
            raise InvalidRestoreTarget("Metadata.targetName is required")
        if name in self.objects and str(metadata.get("overwrite", "false")).lower() != "true":
            raise InvalidRestoreTarget(
                path=name, detail='exists; set Metadata.overwrite to "true" to replace it'
            )
        return name

    def check_restore(self, metadata: Mapping[str, str], policy: host_paths.Policy) -> None:
        self._target(metadata)

    def restore(self, request: RestoreRequest) -> None:
        name = self._target(request.metadata)
        data = request.source.read_file(ENTRY)
        request.progress(Progress(len(data), len(data)))
        self.objects[name] = data

    def restore_defaults(self, resource: Resource | None) -> dict[str, str]:
        return {"targetName": resource.source if resource is not None else "", "overwrite": "false"}

    def validate_restore(self, request: RestoreRequest) -> str | None:
        if self.check is None:
            return None
        return self.check(self.objects[request.metadata["targetName"]])
