"""Every key-service error class answers its AWS KMS error code through the server's one
error table, and every code is one the KMS model (or the protocol) defines."""

from __future__ import annotations

import inspect

import botocore.session
import pytest

from snowvault.control.services import kms_errors
from snowvault.core.errors import SnowvaultError
from snowvault.interfaces.api import errors, server

CLASSES = [
    cls
    for _, cls in inspect.getmembers(kms_errors, inspect.isclass)
    if issubclass(cls, SnowvaultError) and cls.__module__ == kms_errors.__name__
]


def _kms_error_codes() -> set[str]:
    model = botocore.session.get_session().get_service_model("kms")
    return {
        shape for shape in model.shape_names if model.shape_for(shape).metadata.get("exception")
    }


def test_every_kms_error_class_is_in_the_table() -> None:
    assert len(CLASSES) >= 10
    assert set(CLASSES) == set(kms_errors.API_CODES)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_kms_errors_answer_their_own_code(cls: type[SnowvaultError]) -> None:
    code, status = kms_errors.API_CODES[cls]
    assert errors.lookup(cls(), server.ERROR_TABLE) == (code, status)
    assert status == 400
    # AWS answers alias/aws/... with NotAuthorizedException, a code outside the model
    assert code in _kms_error_codes() | {"ValidationException", "NotAuthorizedException"}


def test_message_names_the_key_not_its_material() -> None:
    exc = kms_errors.KeyDisabled(key_arn="arn:aws:kms:us-east-1:111122223333:key/k", action="x")
    api = errors.to_api_error(exc, server.ERROR_TABLE)
    assert api.code == "DisabledException"
    assert api.message.startswith("KMS key arn:aws:kms:us-east-1:111122223333:key/k is disabled")
