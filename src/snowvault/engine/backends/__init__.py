"""Object stores: dumb, documented, one Protocol (see base.py).

Stores: memory, local (a directory), s3 (imported on demand: it pulls in boto3).
Wrappers with the same Protocol: retry, readonly. ``open_backend(url)`` builds one.
"""

from snowvault.engine.backends.base import (
    Backend,
    Capabilities,
    ObjectInfo,
    Retention,
    RetentionMode,
)
from snowvault.engine.backends.local import LocalBackend
from snowvault.engine.backends.memory import MemoryBackend
from snowvault.engine.backends.readonly import ReadOnlyBackend
from snowvault.engine.backends.retry import RetryBackend
from snowvault.engine.backends.url import open_backend

__all__ = [
    "Backend",
    "Capabilities",
    "LocalBackend",
    "MemoryBackend",
    "ObjectInfo",
    "ReadOnlyBackend",
    "Retention",
    "RetentionMode",
    "RetryBackend",
    "open_backend",
]
