"""The agent operations of the extension API, signed with SigV4 (service ``snowvault``)
with the agent's access key pair.

    api = AgentApi("http://backup:8080", "us-east-1", key_id, secret)
    api.call("AgentHello", {"Version": "0.1.0"})

An error answer raises the core error of its family (:func:`error_of`: NotFound,
PermissionDenied, Unavailable, InvalidInput) carrying the AWS error code in
``exc.fields["code"]``; a refused or unknown job is ``ResourceNotFoundException`` (the
lease is gone: stop working on it). The server being unreachable is Unavailable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from snowvault.core import errors

PREFIX = "/_snowvault/v1/"
SERVICE = "snowvault"
NOT_FOUND = "ResourceNotFoundException"
UNREACHABLE = "Unreachable"


def error_of(code: str, message: str, status: int) -> errors.SnowvaultError:
    """The server's error answer as a core error, its code in ``fields["code"]``."""
    text = f"{code}: {message}"
    if code == NOT_FOUND:
        return errors.NotFound(text, code=code)
    if status == 403:
        return errors.PermissionDenied(text, code=code)
    if status >= 500:
        return errors.Unavailable(text, code=code)
    return errors.InvalidInput(text, code=code)


def code_of(exc: BaseException) -> str | None:
    return exc.fields.get("code") if isinstance(exc, errors.SnowvaultError) else None


@dataclass
class AgentApi:
    endpoint: str
    region: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    timeout: float = 60.0

    def call(self, action: str, body: dict[str, Any], *, timeout: float | None = None) -> Any:
        data = json.dumps(body).encode()
        url = f"{self.endpoint.rstrip('/')}{PREFIX}{action}"
        req = AWSRequest("POST", url, data=data, headers={"Content-Type": "application/json"})
        creds = Credentials(self.access_key_id, self.secret_access_key)
        SigV4Auth(creds, SERVICE, self.region).add_auth(req)
        try:
            resp = urllib3.request(
                "POST",
                url,
                body=data,
                headers=dict(req.headers.items()),
                retries=False,
                timeout=timeout or self.timeout,
            )
        except urllib3.exceptions.HTTPError as exc:
            text = f"cannot reach the snowvault server at {self.endpoint}: {exc}"
            raise errors.Unavailable(text, code=UNREACHABLE) from None
        try:
            doc = json.loads(resp.data or b"{}")
        except ValueError:
            doc = {}
        if resp.status != 200:
            code = str(doc.get("__type") or resp.headers.get("x-amzn-ErrorType") or resp.status)
            raise error_of(code.split(":")[0], str(doc.get("message", "")), resp.status)
        return doc
