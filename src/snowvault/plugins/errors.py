"""Errors of the plugin layer, each a subclass in the core tree (so both edge tables
already translate them: InvalidInput -> 400 InvalidParameterValueException and exit 2,
Conflict -> 400 InvalidRequestException and exit 5).

    InvalidInput
    ├── UnsupportedResourceType   no plugin registered for the type
    └── InvalidRestoreTarget      StartRestoreJob's Metadata cannot be honoured
    Conflict
    └── RestoreNotValid           a plugin's after-restore check found a problem
    PermissionDenied
    ├── PathRefused               (model/host_paths.py) a host path outside the rule
    └── NetworkRefused            (model/net_reach.py) a host outside allowed_networks

``PathRefused`` and ``NetworkRefused`` are the model's rules' own errors (the model sits
below the plugins); they are named here so a plugin finds every error it raises in one
module: ``raise errors.NetworkRefused(host=..., reason=...)``.

Depends on core and the model's reach rules only.
"""

from __future__ import annotations

from snowvault.control.model import host_paths, net_reach
from snowvault.core.errors import Conflict, InvalidInput

PathRefused = host_paths.PathRefused
NetworkRefused = net_reach.NetworkRefused


class UnsupportedResourceType(InvalidInput):
    """resource type {resource_type!r} is not supported (supported: {supported})"""


class InvalidRestoreTarget(InvalidInput):
    """Metadata.targetPath {path!r}: {detail}"""


class RestoreNotValid(Conflict):
    """the restored {resource_type} did not pass its check: {detail}"""
