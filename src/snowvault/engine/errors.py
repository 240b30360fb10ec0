"""Errors of the data plane.

SnowvaultError
└── EngineError
    ├── BackendError                  a store failed
    │   ├── ObjectNotFound            no object of that name
    │   ├── ObjectExists              put of a name that exists (names are immutable)
    │   ├── ObjectLocked              retention forbids deleting it (WORM)
    │   ├── ShortRead                 fewer bytes than asked for
    │   ├── TransientBackendError     retrying may help (timeouts, 5xx, throttling)
    │   └── PermanentBackendError     retrying will not help (auth, bad bucket)
    ├── RepositoryNotFound            no repository at the URL
    ├── RepositoryExists              init over an existing repository
    ├── WrongKey                      no key slot opens with what was given
    ├── IntegrityError                an object fails authentication or parsing
    └── RecoveryPointNotFound         no recovery point with that id
"""

from __future__ import annotations

from snowvault.core.errors import SnowvaultError


class EngineError(SnowvaultError):
    """{detail}"""


class BackendError(EngineError):
    """storage error: {detail}"""


class ObjectNotFound(BackendError):
    """object not found: {name}"""


class ObjectExists(BackendError):
    """object already exists: {name}"""


class ObjectLocked(BackendError):
    """object is under retention and cannot be deleted: {name}"""


class ShortRead(BackendError):
    """short read of {name}: wanted {wanted} bytes, got {got}"""


class TransientBackendError(BackendError):
    """temporary storage error: {detail}"""


class PermanentBackendError(BackendError):
    """storage error: {detail}"""


class RepositoryNotFound(EngineError):
    """no repository at {url}"""


class RepositoryExists(EngineError):
    """a repository already exists at {url}"""


class WrongKey(EngineError):
    """wrong passphrase or key: no key slot of this repository opens with it"""


class IntegrityError(EngineError):
    """integrity check failed for {name}: {detail}"""


class RecoveryPointNotFound(EngineError):
    """recovery point not found: {id}"""
