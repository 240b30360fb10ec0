"""The services layer's errors, and the map of the whole snowvault error tree.

Every error is a :class:`~snowvault.core.errors.SnowvaultError`; each layer defines its
own leaves (lower layers cannot import this module), and the edges translate the tree
once each: ``interfaces/api/errors.py`` to AWS error codes, ``interfaces/cli/errors.py``
to exit codes. Both tables list every class below (a test walks the tree). The class
docstring is the message template: ``KeyNotFound(key="k")`` reads "Key 'k' does not exist".

    SnowvaultError                    core/errors.py
    ├── InvalidInput
    │   ├── InvalidToken              catalog/pagination.py: a NextToken not ours
    │   ├── InvalidHostPath           model/host_paths.py
    │   ├── UnsupportedResourceType   plugins/errors.py: no plugin for the type
    │   ├── InvalidRestoreTarget      plugins/errors.py: restore Metadata not honoured
    │   ├── RegionNotConfigured
    │   ├── ObjectLockMissing         a Vault Lock on S3 without Object Lock
    │   ├── KmsValidation             ValidationException
    │   ├── InvalidMarker             InvalidMarkerException (a KMS list's Marker not ours)
    │   ├── InvalidAliasName          InvalidAliasNameException
    │   ├── InvalidCiphertext         InvalidCiphertextException
    │   ├── IncorrectKey              IncorrectKeyException
    │   ├── MalformedPolicy           MalformedPolicyDocumentException
    │   ├── InvalidGrantToken         InvalidGrantTokenException
    │   └── InvalidGrantId            InvalidGrantIdException
    ├── NotFound
    │   ├── KeyNotFound               NotFoundException (KMS)
    │   ├── AliasNotFound             NotFoundException
    │   ├── KeyDeleted                NotFoundException (the material is gone)
    │   ├── PolicyNotFound            NotFoundException
    │   └── GrantNotFound             NotFoundException
    ├── AlreadyExists
    │   └── AliasExists               AlreadyExistsException
    ├── Conflict
    │   ├── RepositoryLocked          engine/locks.py
    │   ├── RestoreNotValid           plugins/errors.py: after-restore check failed
    │   ├── JobStopped                internal: a running job was asked to stop
    │   ├── VaultLocked               InvalidRequestException
    │   ├── LegalHoldActive           InvalidResourceStateException
    │   ├── HoldNotCancelable         InvalidResourceStateException
    │   ├── PlanHasSelections         InvalidRequestException
    │   ├── KeyDisabled               DisabledException
    │   ├── KeyInvalidState           KMSInvalidStateException
    │   ├── UnsupportedKmsOperation   UnsupportedOperationException
    │   ├── RotationLimitExceeded     LimitExceededException
    │   └── QuotaExceeded             LimitExceededException (an AWS Backup quota)
    ├── PermissionDenied
    │   ├── PathRefused               model/host_paths.py: outside the allowed host paths
    │   ├── NetworkRefused            model/net_reach.py: outside the allowed networks
    │   ├── AccessDenied              IAM, key policy or ownership refused the caller
    │   └── ReservedAlias             NotAuthorizedException
    ├── Unavailable
    └── EngineError                   engine/errors.py: the data plane's own tree
        ├── BackendError (ObjectNotFound, ObjectExists, ObjectLocked, ShortRead,
        │                 TransientBackendError, PermanentBackendError)
        ├── RepositoryNotFound, RepositoryExists, WrongKey, IntegrityError
        └── RecoveryPointNotFound

The CLI adds its client-side leaves (interfaces/cli/client.py: ApiError and its
per-family subclasses, ServerUnreachable, ClientConfigError, JobUnsuccessful); they
never reach the API and are in the exit-code table only.

Messages name keys by ARN only; key material never appears in an error.
Depends on core only.
"""

from __future__ import annotations

from snowvault.core.errors import AlreadyExists, Conflict, InvalidInput, NotFound, PermissionDenied

# --- any service -------------------------------------------------------------------------


class RegionNotConfigured(InvalidInput):
    """region {region} is not configured on this server (configured: {configured})"""


class JobStopped(Conflict):
    """job {job_id} was stopped: {detail}"""


class AccessDenied(PermissionDenied):
    """{detail}"""


class PlanHasSelections(Conflict):
    """backup plan {plan_id} still has {count} selection(s); delete them first"""


# --- vault lock and legal holds ----------------------------------------------------------


class VaultLocked(Conflict):
    """{detail}"""


class LegalHoldActive(Conflict):
    """{detail}"""


class HoldNotCancelable(Conflict):
    """{detail}"""


class ObjectLockMissing(InvalidInput):
    """the bucket of {location} does not have S3 Object Lock enabled; a Vault Lock on S3
    storage needs it (create the bucket with Object Lock, or store the vault elsewhere)"""


# --- the key service (AWS KMS) -----------------------------------------------------------


class KmsValidation(InvalidInput):
    """{detail}"""


class InvalidMarker(InvalidInput):
    """The Marker is not one this server issued for this list ({detail})"""


class InvalidAliasName(InvalidInput):
    """Alias {name!r} is invalid: {detail}"""


class InvalidCiphertext(InvalidInput):
    """The ciphertext is invalid or was not encrypted under a key of this account: {detail}"""


class IncorrectKey(InvalidInput):
    """The ciphertext was encrypted under {actual}, not under the KeyId {given}."""


class MalformedPolicy(InvalidInput):
    """The key policy is not a valid key policy document: {detail}"""


class InvalidGrantToken(InvalidInput):
    """The grant token is not valid: {detail}"""


class InvalidGrantId(InvalidInput):
    """The grant id is not valid: {detail}"""


class KeyNotFound(NotFound):
    """Key '{key}' does not exist"""


class AliasNotFound(NotFound):
    """Alias '{name}' does not exist"""


class KeyDeleted(NotFound):
    """KMS key {key_arn} was deleted on {date}; its material is gone, its data unrecoverable"""


class PolicyNotFound(NotFound):
    """Key policy {name!r} does not exist: a KMS key has one key policy, named default"""


class GrantNotFound(NotFound):
    """Grant {grant!r} does not exist on key {key_arn}"""


class AliasExists(AlreadyExists):
    """An alias with the name {name} already exists"""


class KeyDisabled(Conflict):
    """KMS key {key_arn} is disabled: {action} needs an enabled key (EnableKey restores service)"""


class KeyInvalidState(Conflict):
    """KMS key {key_arn} is {state}: {action} is not allowed in that state"""


class UnsupportedKmsOperation(Conflict):
    """{detail}"""


class RotationLimitExceeded(Conflict):
    """KMS key {key_arn} reached the limit of {limit} on-demand rotations"""


class QuotaExceeded(Conflict):
    """{what} already has {limit} {items}, AWS Backup's quota"""


class ReservedAlias(PermissionDenied):
    """Alias names beginning with alias/aws/ are reserved for AWS managed keys: {name}"""
