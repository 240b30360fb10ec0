"""The one table from error classes to CLI exit codes (most specific class wins).

Every class of the error tree (drawn in ``control/services/errors.py``) and the CLI's
own client-side classes has its own entry; a test walks the tree and fails on a class
missing here or from the API's table, and on a name here that is no class of the tree.
Classes are named by their dotted path, so the CLI — a client of the API — never
imports the server's layers (the catalog alone costs a second) to choose an exit code:
a class can only be raised once its module is loaded, and its name is all it takes.

    0 ok   1 other error   2 invalid input   3 not found   4 already exists
    5 conflict / wrong state   6 permission denied   7 unavailable (retry may help)
    8 data integrity   9 client configuration   10 a job ended unsuccessfully
"""

from __future__ import annotations

OTHER, INVALID, NOT_FOUND, EXISTS, CONFLICT, DENIED, UNAVAILABLE = 1, 2, 3, 4, 5, 6, 7
INTEGRITY, CLIENT_CONFIG, JOB_UNSUCCESSFUL = 8, 9, 10


def _named(module: str, codes: dict[str, int]) -> dict[str, int]:
    return {f"snowvault.{module}.{name}": code for name, code in codes.items()}


EXIT_CODES: dict[str, int] = {
    **_named(
        "core.errors",
        {
            "SnowvaultError": OTHER,
            "InvalidInput": INVALID,
            "NotFound": NOT_FOUND,
            "AlreadyExists": EXISTS,
            "Conflict": CONFLICT,
            "PermissionDenied": DENIED,
            "Unavailable": UNAVAILABLE,
        },
    ),
    **_named(
        "engine.errors",
        {
            "EngineError": OTHER,
            "BackendError": UNAVAILABLE,
            "ObjectNotFound": NOT_FOUND,
            "ObjectExists": EXISTS,
            "ObjectLocked": CONFLICT,
            "ShortRead": INTEGRITY,
            "TransientBackendError": UNAVAILABLE,
            "PermanentBackendError": UNAVAILABLE,
            "RepositoryNotFound": NOT_FOUND,
            "RepositoryExists": EXISTS,
            "WrongKey": DENIED,
            "IntegrityError": INTEGRITY,
            "RecoveryPointNotFound": NOT_FOUND,
        },
    ),
    **_named("engine.locks", {"RepositoryLocked": CONFLICT}),
    **_named("control.model.host_paths", {"InvalidHostPath": INVALID, "PathRefused": DENIED}),
    **_named("control.model.net_reach", {"NetworkRefused": DENIED}),
    **_named("control.catalog.pagination", {"InvalidToken": INVALID}),
    **_named(
        "plugins.errors",
        {
            "UnsupportedResourceType": INVALID,
            "InvalidRestoreTarget": INVALID,
            "RestoreNotValid": CONFLICT,
        },
    ),
    **_named(
        "control.services.errors",
        {
            "RegionNotConfigured": INVALID,
            "JobStopped": CONFLICT,
            "AccessDenied": DENIED,
            "PlanHasSelections": CONFLICT,
            "VaultLocked": CONFLICT,
            "LegalHoldActive": CONFLICT,
            "HoldNotCancelable": CONFLICT,
            "ObjectLockMissing": INVALID,
            "KmsValidation": INVALID,
            "InvalidMarker": INVALID,
            "InvalidAliasName": INVALID,
            "InvalidCiphertext": INVALID,
            "IncorrectKey": INVALID,
            "MalformedPolicy": INVALID,
            "InvalidGrantToken": INVALID,
            "InvalidGrantId": INVALID,
            "KeyNotFound": NOT_FOUND,
            "AliasNotFound": NOT_FOUND,
            "KeyDeleted": NOT_FOUND,
            "PolicyNotFound": NOT_FOUND,
            "GrantNotFound": NOT_FOUND,
            "AliasExists": EXISTS,
            "KeyDisabled": CONFLICT,
            "KeyInvalidState": CONFLICT,
            "UnsupportedKmsOperation": CONFLICT,
            "RotationLimitExceeded": CONFLICT,
            "QuotaExceeded": CONFLICT,
            "ReservedAlias": DENIED,
        },
    ),
    **_named(
        "interfaces.cli.client",
        {
            "ClientConfigError": CLIENT_CONFIG,
            "ServerUnreachable": UNAVAILABLE,
            "ApiError": OTHER,
            "ApiInvalidInput": INVALID,
            "ApiNotFound": NOT_FOUND,
            "ApiAlreadyExists": EXISTS,
            "ApiConflict": CONFLICT,
            "ApiAccessDenied": DENIED,
            "ApiUnavailable": UNAVAILABLE,
            "JobUnsuccessful": JOB_UNSUCCESSFUL,
        },
    ),
    **_named("interfaces.cli.quickstart_cmd", {"SampleNotAllowed": DENIED}),
}


def class_name(cls: type) -> str:
    """The dotted name the table knows ``cls`` by."""
    return f"{cls.__module__}.{cls.__qualname__}"


def exit_code(exc: BaseException) -> int | None:
    """The exit code for ``exc``, or None when it is not a snowvault error (a bug)."""
    for cls in type(exc).__mro__:
        code = EXIT_CODES.get(class_name(cls))
        if code is not None:
            return code
    return None


# The API names restore options by their Metadata keys; a CLI user typed flags.
FLAG_TERMS: tuple[tuple[str, str], ...] = (
    ('set Metadata.overwrite to "true"', "pass --overwrite"),
    ("Metadata.overwrite", "--overwrite"),
    ("Metadata.targetPath", "--to"),
    ("Metadata.items", "--item"),
)


def in_flag_terms(message: str) -> str:
    """An API message with the restore Metadata keys named as ``restore start``'s flags.

    >>> in_flag_terms('is not empty; set Metadata.overwrite to "true" to restore over it')
    'is not empty; pass --overwrite to restore over it'
    """
    for api_term, flag in FLAG_TERMS:
        message = message.replace(api_term, flag)
    return message
