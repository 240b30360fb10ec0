"""The one table from snowvault error classes to AWS error codes, and the error body.

Most specific class wins (the exception's MRO is walked). Later layers add their own
classes in ONE place, the composition root, by building the table with extra entries:

    >>> from snowvault.core import errors as core_errors
    >>> class VaultLocked(core_errors.Conflict):
    ...     '''vault {name} is locked'''
    >>> table = build_error_table({VaultLocked: ("InvalidResourceStateException", 400)})
    >>> to_api_error(VaultLocked(name="v"), table).code
    'InvalidResourceStateException'

The response body carries ``__type``, ``code``, ``message`` and ``Message`` plus the
``x-amzn-ErrorType`` header, so both botocore parsers (rest-json and json) find the
code. Status codes are 4xx unless retrying can help: boto3 retries every 5xx.

Depends on core and engine error trees only; must not depend on HTTP frameworks.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from snowvault.core import errors as core_errors
from snowvault.engine import errors as engine_errors

ErrorTable = Mapping[type[BaseException], tuple[str, int]]

INTERNAL = ("InternalFailure", 500)

_BASE: dict[type[BaseException], tuple[str, int]] = {
    core_errors.SnowvaultError: ("ServiceUnavailableException", 500),
    core_errors.InvalidInput: ("InvalidParameterValueException", 400),
    core_errors.NotFound: ("ResourceNotFoundException", 400),
    core_errors.AlreadyExists: ("AlreadyExistsException", 400),
    core_errors.Conflict: ("InvalidRequestException", 400),
    core_errors.PermissionDenied: ("AccessDeniedException", 403),
    core_errors.Unavailable: ("ServiceUnavailableException", 500),
    engine_errors.EngineError: ("ServiceUnavailableException", 500),
    engine_errors.BackendError: ("DependencyFailureException", 500),
    engine_errors.ObjectNotFound: ("ResourceNotFoundException", 400),
    engine_errors.ObjectExists: ("AlreadyExistsException", 400),
    engine_errors.ObjectLocked: ("InvalidRequestException", 400),
    engine_errors.ShortRead: ("DependencyFailureException", 500),
    engine_errors.TransientBackendError: ("ServiceUnavailableException", 500),
    engine_errors.PermanentBackendError: ("DependencyFailureException", 500),
    engine_errors.RepositoryNotFound: ("ResourceNotFoundException", 400),
    engine_errors.RepositoryExists: ("AlreadyExistsException", 400),
    engine_errors.WrongKey: ("AccessDeniedException", 403),
    engine_errors.IntegrityError: ("DependencyFailureException", 500),
    engine_errors.RecoveryPointNotFound: ("ResourceNotFoundException", 400),
}


def build_error_table(
    extra: Mapping[type[BaseException], tuple[str, int]] | None = None,
) -> ErrorTable:
    """The base table plus ``extra`` (an entry may not silently replace a base entry)."""
    table = dict(_BASE)
    for cls, entry in (extra or {}).items():
        if cls in table and table[cls] != entry:
            raise ValueError(f"{cls.__name__} is already mapped to {table[cls][0]}")
        table[cls] = entry
    return MappingProxyType(table)


ERROR_TABLE: ErrorTable = build_error_table()


class ApiError(Exception):
    """An error the API answers with: AWS ``code``, human ``message``, HTTP ``status``."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def __repr__(self) -> str:
        return f"ApiError({self.code!r}, {self.message!r}, {self.status})"


def lookup(exc: BaseException, table: ErrorTable = ERROR_TABLE) -> tuple[str, int] | None:
    """The (code, status) of the most specific class of ``exc`` in ``table``."""
    for cls in type(exc).__mro__:
        entry = table.get(cls)
        if entry is not None:
            return entry
    return None


def to_api_error(exc: BaseException, table: ErrorTable = ERROR_TABLE) -> ApiError:
    """``exc`` as an :class:`ApiError`; unknown exceptions become a 500 without details."""
    if isinstance(exc, ApiError):
        return exc
    entry = lookup(exc, table)
    if entry is None:
        return ApiError(INTERNAL[0], "An internal error occurred.", INTERNAL[1])
    return ApiError(entry[0], str(exc), entry[1])


def error_body(error: ApiError) -> dict[str, str]:
    return {
        "__type": error.code,
        "code": error.code,
        "message": error.message,
        "Message": error.message,
    }


def error_headers(error: ApiError) -> dict[str, str]:
    return {"x-amzn-ErrorType": f"{error.code}:"}
