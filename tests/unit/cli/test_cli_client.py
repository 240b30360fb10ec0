"""Profile precedence, error translation and extension signing of the CLI's API client."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import botocore.exceptions
import pytest

from snowvault.core import errors as core_errors
from snowvault.interfaces.cli import client, errors


def _write_profile(tmp_path: Path, **doc: str) -> dict[str, str]:
    path = tmp_path / "cfg" / "snowvault" / "config.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(doc), encoding="utf-8")
    return {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "HOME": str(tmp_path)}


def test_profile_file_is_used_when_nothing_else_is_given(tmp_path: Path) -> None:
    env = _write_profile(
        tmp_path,
        endpoint="http://127.0.0.1:7000/",
        region="eu-west-1",
        access_key_id="AKFILE",
        secret_access_key="SKFILE",
        account_id="123456789012",
    )
    p = client.load_profile(env=env)
    assert (p.endpoint, p.region, p.access_key_id, p.secret_access_key, p.account_id) == (
        "http://127.0.0.1:7000",
        "eu-west-1",
        "AKFILE",
        "SKFILE",
        "123456789012",
    )


def test_env_beats_file_and_flags_beat_env(tmp_path: Path) -> None:
    env = _write_profile(
        tmp_path,
        endpoint="http://file:1",
        region="eu-west-1",
        access_key_id="AKFILE",
        secret_access_key="SKFILE",
    )
    env |= {
        "AWS_ENDPOINT_URL": "http://env:2",
        "AWS_ACCESS_KEY_ID": "AKENV",
        "AWS_DEFAULT_REGION": "ap-south-1",
    }
    p = client.load_profile(env=env)
    assert (p.endpoint, p.access_key_id, p.secret_access_key, p.region) == (
        "http://env:2",
        "AKENV",
        "SKFILE",
        "ap-south-1",
    )
    p = client.load_profile(endpoint="http://flag:3", region="us-west-2", env=env)
    assert (p.endpoint, p.region) == ("http://flag:3", "us-west-2")


def test_default_path_is_under_home_config(tmp_path: Path) -> None:
    assert client.profile_path({"HOME": "/h"}) == Path("/h/.config/snowvault/config.json")
    assert client.profile_path({"XDG_CONFIG_HOME": "/x", "HOME": "/h"}) == Path(
        "/x/snowvault/config.json"
    )


def test_missing_settings_name_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(client.ClientConfigError, match="missing endpoint, secret_access_key"):
        client.load_profile(env={"HOME": str(tmp_path), "AWS_ACCESS_KEY_ID": "AK"})


def test_broken_profile_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "snowvault" / "config.json"
    path.parent.mkdir()
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(client.ClientConfigError, match="is not JSON"):
        client.load_profile(env={"XDG_CONFIG_HOME": str(tmp_path)})


@pytest.mark.parametrize(
    ("code", "cls", "exit_code"),
    [
        ("ResourceNotFoundException", client.ApiNotFound, 3),
        ("AlreadyExistsException", client.ApiAlreadyExists, 4),
        ("InvalidParameterValueException", client.ApiInvalidInput, 2),
        ("InvalidRequestException", client.ApiConflict, 5),
        ("AccessDeniedException", client.ApiAccessDenied, 6),
        ("ThrottlingException", client.ApiUnavailable, 7),
        ("SomethingNewException", client.ApiError, 1),
    ],
)
def test_client_errors_become_api_errors_with_stable_exit_codes(
    code: str, cls: type[client.ApiError], exit_code: int
) -> None:
    raw = botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": "vault nope\nis missing"}}, "DescribeBackupVault"
    )
    with pytest.raises(cls) as info, client.translated("http://127.0.0.1:9"):
        raise raw
    assert type(info.value) is cls
    assert str(info.value) == f"{code}: vault nope is missing"
    assert errors.exit_code(info.value) == exit_code
    assert info.value.__cause__ is None


def test_connection_errors_name_the_endpoint() -> None:
    raw = botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:9/x")
    with pytest.raises(client.ServerUnreachable) as info, client.translated("http://127.0.0.1:9"):
        raise raw
    assert "cannot reach the snowvault server at http://127.0.0.1:9" in str(info.value)
    assert "\n" not in str(info.value)
    assert errors.exit_code(info.value) == 7


def test_every_client_error_class_has_an_exit_code() -> None:
    classes = [
        cls
        for _, cls in inspect.getmembers(client, inspect.isclass)
        if issubclass(cls, core_errors.SnowvaultError) and cls.__module__ == client.__name__
    ]
    assert len(classes) >= 10
    assert all(errors.class_name(cls) in errors.EXIT_CODES for cls in classes)


def test_extension_error_read_from_header_or_body() -> None:
    headers = {"X-Amzn-ErrorType": "ResourceNotFoundException:http://internal.amazon.com/"}
    with pytest.raises(client.ApiNotFound, match="no resource r"):
        client.parse_extension_response(400, headers, b'{"message": "no resource r"}')
    with pytest.raises(client.ApiAlreadyExists, match="AlreadyExistsException: dup"):
        client.parse_extension_response(
            400, {}, b'{"__type": "aws#AlreadyExistsException", "Message": "dup"}'
        )
    with pytest.raises(client.ApiError, match="HTTP502: HTTP status 502"):
        client.parse_extension_response(502, {}, b"<html>bad gateway</html>")


def test_extension_requests_are_signed_for_the_snowvault_service() -> None:
    profile = client.Profile("http://127.0.0.1:9", "eu-west-1", "AKTEST", "secret")
    request = client.signed_extension_request(profile, "ListResources", {"MaxResults": 5})
    auth = request.headers["Authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKTEST/")
    assert "/eu-west-1/snowvault/aws4_request" in auth
    assert request.url == "http://127.0.0.1:9/_snowvault/v1/ListResources"
    assert json.loads(request.data) == {"MaxResults": 5}
