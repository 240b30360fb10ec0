"""Every key-service error class answers its AWS KMS error code through the server's one
error table, and every code is one the KMS model (or the protocol) defines."""

from __future__ import annotations

import botocore.session
import pytest

from snowvault.control.services import errors as service_errors
from snowvault.core.errors import SnowvaultError
from snowvault.interfaces.api import errors

KMS_CODES = {
    service_errors.KmsValidation: "ValidationException",
    service_errors.InvalidAliasName: "InvalidAliasNameException",
    service_errors.InvalidCiphertext: "InvalidCiphertextException",
    service_errors.IncorrectKey: "IncorrectKeyException",
    service_errors.MalformedPolicy: "MalformedPolicyDocumentException",
    service_errors.InvalidGrantToken: "InvalidGrantTokenException",
    service_errors.InvalidGrantId: "InvalidGrantIdException",
    service_errors.KeyNotFound: "NotFoundException",
    service_errors.AliasNotFound: "NotFoundException",
    service_errors.KeyDeleted: "NotFoundException",
    service_errors.PolicyNotFound: "NotFoundException",
    service_errors.GrantNotFound: "NotFoundException",
    service_errors.AliasExists: "AlreadyExistsException",
    service_errors.KeyDisabled: "DisabledException",
    service_errors.KeyInvalidState: "KMSInvalidStateException",
    service_errors.UnsupportedKmsOperation: "UnsupportedOperationException",
    service_errors.RotationLimitExceeded: "LimitExceededException",
    service_errors.ReservedAlias: "NotAuthorizedException",
}


def _kms_error_codes() -> set[str]:
    model = botocore.session.get_session().get_service_model("kms")
    return {
        shape for shape in model.shape_names if model.shape_for(shape).metadata.get("exception")
    }


@pytest.mark.parametrize("cls", list(KMS_CODES), ids=lambda c: c.__name__)
def test_kms_errors_answer_their_own_code(cls: type[SnowvaultError]) -> None:
    code = KMS_CODES[cls]
    assert errors.ERROR_TABLE[cls] == (code, 400)
    assert errors.lookup(cls()) == (code, 400)
    # AWS answers alias/aws/... with NotAuthorizedException, a code outside the model
    assert code in _kms_error_codes() | {"ValidationException", "NotAuthorizedException"}


def test_message_names_the_key_not_its_material() -> None:
    exc = service_errors.KeyDisabled(key_arn="arn:aws:kms:us-east-1:111122223333:key/k", action="x")
    api = errors.to_api_error(exc)
    assert api.code == "DisabledException"
    assert api.message.startswith("KMS key arn:aws:kms:us-east-1:111122223333:key/k is disabled")
