"""Errors of the services layer, each a subclass in the core tree (so both edge tables
already translate them: InvalidInput -> 400 InvalidParameterValueException and exit 2,
Conflict -> 400 InvalidRequestException and exit 5).

    InvalidInput
    ├── RegionNotConfigured
    ├── UnsupportedResourceType
    └── InvalidRestoreTarget
    Conflict
    └── JobStopped           (internal: a running job was asked to stop)

Depends on core only.
"""

from __future__ import annotations

from snowvault.core.errors import Conflict, InvalidInput


class RegionNotConfigured(InvalidInput):
    """region {region} is not configured on this server (configured: {configured})"""


class UnsupportedResourceType(InvalidInput):
    """resource type {resource_type!r} is not supported (supported: {supported})"""


class InvalidRestoreTarget(InvalidInput):
    """Metadata.targetPath {path!r}: {detail}"""


class JobStopped(Conflict):
    """job {job_id} was stopped: {detail}"""
