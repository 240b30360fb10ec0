"""The one table from snowvault error classes to AWS error codes, and the error body.

Every class of the error tree (drawn in ``control/services/errors.py``) has its own
entry, written here and nowhere else; a test walks the tree and fails on a class
missing from this table or from the CLI's exit-code table. Lookup walks the
exception's MRO, so the most specific class wins:

    >>> from snowvault.control.services import errors as service_errors
    >>> to_api_error(service_errors.LegalHoldActive(detail="held")).code
    'InvalidResourceStateException'

The response body carries ``__type``, ``code``, ``message`` and ``Message`` plus the
``x-amzn-ErrorType`` header, so both botocore parsers (rest-json and json) find the
code. Status codes are 4xx unless retrying can help: boto3 retries every 5xx.

Depends on the error classes of the layers below; must not depend on HTTP frameworks.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from snowvault.control.catalog import pagination
from snowvault.control.model import host_paths, net_reach
from snowvault.control.services import errors as svc
from snowvault.core import errors as core
from snowvault.engine import errors as engine
from snowvault.engine import locks
from snowvault.plugins import errors as plugin

ErrorTable = Mapping[type[BaseException], tuple[str, int]]

INTERNAL = ("InternalFailure", 500)
_BAD = 400

ERROR_TABLE: ErrorTable = MappingProxyType(
    {
        # core: the families
        core.SnowvaultError: ("ServiceUnavailableException", 500),
        core.InvalidInput: ("InvalidParameterValueException", _BAD),
        core.NotFound: ("ResourceNotFoundException", _BAD),
        core.AlreadyExists: ("AlreadyExistsException", _BAD),
        core.Conflict: ("InvalidRequestException", _BAD),
        core.PermissionDenied: ("AccessDeniedException", 403),
        core.Unavailable: ("ServiceUnavailableException", 500),
        # engine (data plane)
        engine.EngineError: ("ServiceUnavailableException", 500),
        engine.BackendError: ("DependencyFailureException", 500),
        engine.ObjectNotFound: ("ResourceNotFoundException", _BAD),
        engine.ObjectExists: ("AlreadyExistsException", _BAD),
        engine.ObjectLocked: ("InvalidRequestException", _BAD),
        engine.ShortRead: ("DependencyFailureException", 500),
        engine.TransientBackendError: ("ServiceUnavailableException", 500),
        engine.PermanentBackendError: ("DependencyFailureException", 500),
        engine.RepositoryNotFound: ("ResourceNotFoundException", _BAD),
        engine.RepositoryExists: ("AlreadyExistsException", _BAD),
        engine.WrongKey: ("AccessDeniedException", 403),
        engine.IntegrityError: ("DependencyFailureException", 500),
        engine.RecoveryPointNotFound: ("ResourceNotFoundException", _BAD),
        locks.RepositoryLocked: ("InvalidRequestException", _BAD),
        # model, catalog, plugins
        host_paths.InvalidHostPath: ("InvalidParameterValueException", _BAD),
        host_paths.PathRefused: ("AccessDeniedException", 403),
        net_reach.NetworkRefused: ("AccessDeniedException", 403),
        pagination.InvalidToken: ("InvalidParameterValueException", _BAD),
        plugin.UnsupportedResourceType: ("InvalidParameterValueException", _BAD),
        plugin.InvalidRestoreTarget: ("InvalidParameterValueException", _BAD),
        plugin.RestoreNotValid: ("InvalidRequestException", _BAD),
        # services
        svc.RegionNotConfigured: ("InvalidParameterValueException", _BAD),
        svc.JobStopped: ("InvalidRequestException", _BAD),
        svc.AccessDenied: ("AccessDeniedException", 403),
        svc.PlanHasSelections: ("InvalidRequestException", _BAD),
        svc.VaultLocked: ("InvalidRequestException", _BAD),
        svc.LegalHoldActive: ("InvalidResourceStateException", _BAD),
        svc.HoldNotCancelable: ("InvalidResourceStateException", _BAD),
        svc.ObjectLockMissing: ("InvalidParameterValueException", _BAD),
        # services: the key service answers AWS KMS's codes
        svc.KmsValidation: ("ValidationException", _BAD),
        svc.InvalidMarker: ("InvalidMarkerException", _BAD),
        svc.InvalidAliasName: ("InvalidAliasNameException", _BAD),
        svc.InvalidCiphertext: ("InvalidCiphertextException", _BAD),
        svc.IncorrectKey: ("IncorrectKeyException", _BAD),
        svc.MalformedPolicy: ("MalformedPolicyDocumentException", _BAD),
        svc.InvalidGrantToken: ("InvalidGrantTokenException", _BAD),
        svc.InvalidGrantId: ("InvalidGrantIdException", _BAD),
        svc.KeyNotFound: ("NotFoundException", _BAD),
        svc.AliasNotFound: ("NotFoundException", _BAD),
        svc.KeyDeleted: ("NotFoundException", _BAD),
        svc.PolicyNotFound: ("NotFoundException", _BAD),
        svc.GrantNotFound: ("NotFoundException", _BAD),
        svc.AliasExists: ("AlreadyExistsException", _BAD),
        svc.KeyDisabled: ("DisabledException", _BAD),
        svc.KeyInvalidState: ("KMSInvalidStateException", _BAD),
        svc.UnsupportedKmsOperation: ("UnsupportedOperationException", _BAD),
        svc.RotationLimitExceeded: ("LimitExceededException", _BAD),
        svc.ReservedAlias: ("NotAuthorizedException", _BAD),  # AWS's code for alias/aws/
        svc.QuotaExceeded: ("LimitExceededException", _BAD),
    }
)


# The modelled members an error body carries beyond the message, per AWS code: member
# name -> the error's field (``SnowvaultError.fields``). A member is sent only when the
# raised error set that field (AWS Backup's AlreadyExistsException names the existing
# resource's Arn and CreatorRequestId; KMS's has no such members and its errors never
# set those fields).
ERROR_MEMBERS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {"AlreadyExistsException": {"Arn": "arn", "CreatorRequestId": "creator_request_id"}}
)


class ApiError(Exception):
    """An error the API answers with: AWS ``code``, human ``message``, HTTP ``status``,
    and the modelled ``members`` of its error shape (``Arn``...) when known."""

    def __init__(
        self, code: str, message: str, status: int = 400, members: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.members = dict(members or {})

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
    return ApiError(entry[0], str(exc), entry[1], _members(exc, entry[0]))


def _members(exc: BaseException, code: str) -> dict[str, str]:
    fields = getattr(exc, "fields", None)
    if not isinstance(fields, dict):
        return {}
    wanted = ERROR_MEMBERS.get(code, {})
    return {m: str(fields[f]) for m, f in wanted.items() if fields.get(f) is not None}


def error_body(error: ApiError) -> dict[str, str]:
    return {
        **error.members,
        "__type": error.code,
        "code": error.code,
        "message": error.message,
        "Message": error.message,
    }


def error_headers(error: ApiError) -> dict[str, str]:
    return {"x-amzn-ErrorType": f"{error.code}:"}
