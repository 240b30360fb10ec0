"""The one root of every snowvault error, and the core layer's own errors.

Each layer keeps its tree under :class:`SnowvaultError`; the edges (API, CLI) translate
them once, in one table each. The class docstring is the message template: raise
``NotFound(kind="vault", name="x")`` and ``str(err)`` renders the docstring with those
fields.

    SnowvaultError
    ├── InvalidInput          bad argument from a caller
    ├── NotFound              a named thing does not exist
    ├── AlreadyExists         a named thing exists and may not be replaced
    ├── Conflict              the thing is in a state that forbids the action
    ├── PermissionDenied      the principal may not do this
    └── Unavailable           a dependency failed; retrying later may help
"""

from __future__ import annotations

from typing import Any


class SnowvaultError(Exception):
    """{message}"""

    def __init__(self, message: str | None = None, **fields: Any) -> None:
        self.fields = fields
        if message is None:
            template = (type(self).__doc__ or type(self).__name__).strip().splitlines()[0]
            try:
                message = template.format(**fields)
            except (KeyError, IndexError):
                message = template
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        return self.message


class InvalidInput(SnowvaultError):
    """invalid input: {detail}"""


class NotFound(SnowvaultError):
    """{kind} not found: {name}"""


class AlreadyExists(SnowvaultError):
    """{kind} already exists: {name}"""


class Conflict(SnowvaultError):
    """{detail}"""


class PermissionDenied(SnowvaultError):
    """not allowed: {detail}"""


class Unavailable(SnowvaultError):
    """unavailable: {detail}"""
