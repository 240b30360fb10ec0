"""The one table from error classes to CLI exit codes (most specific class wins)."""

from __future__ import annotations

from snowvault.core import errors as core_errors
from snowvault.engine import errors as engine_errors
from snowvault.interfaces.cli import client

EXIT_CODES: dict[type[BaseException], int] = {
    core_errors.SnowvaultError: 1,
    core_errors.InvalidInput: 2,
    core_errors.NotFound: 3,
    core_errors.AlreadyExists: 4,
    core_errors.Conflict: 5,
    core_errors.PermissionDenied: 6,
    core_errors.Unavailable: 7,
    engine_errors.EngineError: 1,
    engine_errors.BackendError: 7,
    engine_errors.ObjectNotFound: 3,
    engine_errors.ObjectExists: 4,
    engine_errors.ObjectLocked: 5,
    engine_errors.ShortRead: 8,
    engine_errors.TransientBackendError: 7,
    engine_errors.PermanentBackendError: 7,
    engine_errors.RepositoryNotFound: 3,
    engine_errors.RepositoryExists: 4,
    engine_errors.WrongKey: 6,
    engine_errors.IntegrityError: 8,
    engine_errors.RecoveryPointNotFound: 3,
    client.ClientConfigError: 9,
    client.ServerUnreachable: 7,
    client.ApiError: 1,
    client.ApiInvalidInput: 2,
    client.ApiNotFound: 3,
    client.ApiAlreadyExists: 4,
    client.ApiConflict: 5,
    client.ApiAccessDenied: 6,
    client.ApiUnavailable: 7,
    client.JobUnsuccessful: 10,
}


def exit_code(exc: BaseException) -> int | None:
    """The exit code for ``exc``, or None when it is not a snowvault error (a bug)."""
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return None
