"""Errors of the plugin layer, each a subclass in the core tree (so both edge tables
already translate them: InvalidInput -> 400 InvalidParameterValueException and exit 2,
Conflict -> 400 InvalidRequestException and exit 5).

    InvalidInput
    ├── UnsupportedResourceType   no plugin registered for the type
    └── InvalidRestoreTarget      StartRestoreJob's Metadata cannot be honoured
    Conflict
    └── RestoreNotValid           a plugin's after-restore check found a problem

Depends on core only.
"""

from __future__ import annotations

from snowvault.core.errors import Conflict, InvalidInput


class UnsupportedResourceType(InvalidInput):
    """resource type {resource_type!r} is not supported (supported: {supported})"""


class InvalidRestoreTarget(InvalidInput):
    """Metadata.targetPath {path!r}: {detail}"""


class RestoreNotValid(Conflict):
    """the restored {resource_type} did not pass its check: {detail}"""
