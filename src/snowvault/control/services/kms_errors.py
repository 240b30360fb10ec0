"""Errors of the key service, each in the core tree and each with its AWS KMS code.

    InvalidInput
    ├── KmsValidation            ValidationException
    ├── InvalidAliasName         InvalidAliasNameException
    ├── InvalidCiphertext        InvalidCiphertextException
    ├── IncorrectKey             IncorrectKeyException
    ├── MalformedPolicy          MalformedPolicyDocumentException
    ├── InvalidGrantToken        InvalidGrantTokenException
    └── InvalidGrantId           InvalidGrantIdException
    NotFound
    ├── KeyNotFound              NotFoundException
    ├── AliasNotFound            NotFoundException
    ├── KeyDeleted               NotFoundException (the material is gone)
    ├── PolicyNotFound           NotFoundException
    └── GrantNotFound            NotFoundException
    AlreadyExists
    └── AliasExists              AlreadyExistsException
    Conflict
    ├── KeyDisabled              DisabledException
    ├── KeyInvalidState          KMSInvalidStateException
    ├── UnsupportedKmsOperation  UnsupportedOperationException
    └── RotationLimitExceeded    LimitExceededException
    PermissionDenied
    └── ReservedAlias            NotAuthorizedException

A key policy that refuses raises authorization.AccessDenied (AccessDeniedException), the
same class every other authorization refusal raises.

Messages name keys by ARN only; key material never appears in an error.
:data:`API_CODES` is what the API's error table adds for these classes.
Depends on core only.
"""

from __future__ import annotations

from snowvault.core.errors import AlreadyExists, Conflict, InvalidInput, NotFound, PermissionDenied


class KmsValidation(InvalidInput):
    """{detail}"""


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


class ReservedAlias(PermissionDenied):
    """Alias names beginning with alias/aws/ are reserved for AWS managed keys: {name}"""


API_CODES: dict[type[BaseException], tuple[str, int]] = {
    KmsValidation: ("ValidationException", 400),
    InvalidAliasName: ("InvalidAliasNameException", 400),
    InvalidCiphertext: ("InvalidCiphertextException", 400),
    IncorrectKey: ("IncorrectKeyException", 400),
    KeyNotFound: ("NotFoundException", 400),
    AliasNotFound: ("NotFoundException", 400),
    KeyDeleted: ("NotFoundException", 400),
    AliasExists: ("AlreadyExistsException", 400),
    KeyDisabled: ("DisabledException", 400),
    KeyInvalidState: ("KMSInvalidStateException", 400),
    UnsupportedKmsOperation: ("UnsupportedOperationException", 400),
    RotationLimitExceeded: ("LimitExceededException", 400),
    ReservedAlias: ("NotAuthorizedException", 400),
    MalformedPolicy: ("MalformedPolicyDocumentException", 400),
    InvalidGrantToken: ("InvalidGrantTokenException", 400),
    InvalidGrantId: ("InvalidGrantIdException", 400),
    PolicyNotFound: ("NotFoundException", 400),
    GrantNotFound: ("NotFoundException", 400),
}
