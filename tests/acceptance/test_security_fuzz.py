"""Fuzz the running server: no input, however malformed, gets a 5xx; the server keeps answering.

Two bounded, deterministic passes against one real ``snowvault server --test-mode``:

(a) Hypothesis draws inputs from botocore's own input shapes (backup and kms models) for
    EVERY operation the server implements, and boto3 (parameter validation off, so
    out-of-range and wrong-typed values go out) serializes and SigV4-signs them with the
    wall clock. Strings mix known names (so calls reach the services) with arbitrary
    text; numbers span far beyond int64; timestamps span years 1..9999.
(b) A seeded mutation loop over valid raw bodies (truncate, flip bytes, deep nesting,
    huge numbers, lone surrogates, NUL, wrong types), each signed correctly so it
    reaches parsing.

Every response must be < 500, and after each batch a plain call must still succeed.
The counts (requests, operations, statuses) are printed (``pytest -s``) for
docs/security.md.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import random
import re
import string
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import botocore.session
import pytest
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from botocore.model import Shape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snowvault.interfaces.api import handlers

EXAMPLES_PER_OPERATION = 8
MUTANTS_PER_SEED = 40
SEED = 20260412

IMPLEMENTED = handlers.implemented()
OPERATIONS = [(svc, op) for svc in sorted(IMPLEMENTED) for op in sorted(IMPLEMENTED[svc])]


class Tally:
    """Requests, statuses and operations seen, for the printed summary."""

    def __init__(self) -> None:
        self.statuses: collections.Counter[int] = collections.Counter()
        self.codes: collections.Counter[str] = collections.Counter()
        self.operations: set[str] = set()
        self.server_errors: list[str] = []
        self.client_side: int = 0

    def record(self, what: str, status: int, detail: str = "", code: str = "") -> None:
        self.statuses[status] += 1
        self.codes[code or str(status)] += 1
        self.operations.add(what)
        if status >= 500:
            self.server_errors.append(f"{what} -> {status}: {detail[:500]}")

    def summary(self, name: str) -> str:
        total = sum(self.statuses.values())
        codes = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        return (
            f"[fuzz {name}] requests={total} operations={len(self.operations)} "
            f"statuses={{{codes}}} 5xx={len(self.server_errors)} "
            f"not-sent(client-side refusal)={self.client_side}\n"
            f"[fuzz {name}] answers: {dict(self.codes.most_common())}"
        )


# -- known names, so generated calls reach the services and not only NotFound -------------


class Known:
    """Names and ARNs of real resources in the fuzzed server (set up once)."""

    values: list[str] = []


@pytest.fixture(scope="module")
def seeded(snowvault_server: Any) -> Iterator[Any]:
    client = _client(snowvault_server, "backup")
    region = snowvault_server.creds["region"]
    vault = client.create_backup_vault(BackupVaultName="fuzz-vault")
    plan = client.create_backup_plan(
        BackupPlan={
            "BackupPlanName": "fuzz-plan",
            "Rules": [{"RuleName": "daily", "TargetBackupVaultName": "fuzz-vault"}],
        }
    )
    kms = _client(snowvault_server, "kms")
    key = kms.create_key(Description="fuzz")["KeyMetadata"]
    Known.values = [
        "fuzz-vault",
        vault["BackupVaultArn"],
        plan["BackupPlanId"],
        plan["BackupPlanArn"],
        plan["VersionId"],
        key["KeyId"],
        key["Arn"],
        "alias/fuzz",
        f"arn:aws:backup:{region}:000000000000:recovery-point:nope",
        "Directory",
        "/tmp",
    ]
    yield snowvault_server


def _client(server: Any, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=server.endpoint,
        region_name=server.creds["region"],
        aws_access_key_id=server.creds["access_key_id"],
        aws_secret_access_key=server.creds["secret_access_key"],
        config=Config(
            parameter_validation=False,
            retries={"max_attempts": 1, "mode": "standard"},
            read_timeout=30,
        ),
    )


def _still_answers(server: Any) -> None:
    client = _client(server, "backup")
    assert client.list_backup_vaults()["ResponseMetadata"]["HTTPStatusCode"] == 200


# -- (a) Hypothesis over the botocore input shapes -------------------------------------------

_SESSION = botocore.session.get_session()
_MODELS = {svc: _SESSION.get_service_model(svc) for svc in IMPLEMENTED}

_NASTY_TEXT = st.sampled_from(
    [
        "",
        " ",
        "aws:x",
        "../../etc/passwd",
        "/",
        "a" * 300,
        "\x00",
        "a\x00b",
        "\u202e",
        "\U0001f600",
        "\ud800x",
        "%2F%2e%2e",
        "rate(99999999999999999 days)",
        "cron(0 0 * * ? 99999999999999999999)",
        "cron(* * * * * *)",
        "99999999999999999999999",
        "-1",
        "NaN",
        "arn:aws:backup:us-east-1:123456789012:backup-vault:x",
        "{}",
        "null",
    ]
)


def _text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(Known.values) if Known.values else st.just("x"),
        _NASTY_TEXT,
        st.text(max_size=40),
        st.text(alphabet=string.ascii_letters + string.digits + "-_.:/", max_size=60),
    )


def _valid_text(shape: Shape) -> st.SearchStrategy[str]:
    """Strings that pass the shape's model constraints, so calls get past validation."""
    meta = shape.metadata
    low, high = int(meta.get("min", 0)), int(meta.get("max", 64))
    pattern = meta.get("pattern")
    if pattern:
        try:
            regex = re.compile(pattern, re.ASCII)
            return st.from_regex(regex, fullmatch=True).filter(lambda v: low <= len(v) <= high)
        except (re.error, ValueError):
            pass
    return st.text(
        alphabet=string.ascii_letters + string.digits + "-_",
        min_size=low,
        max_size=max(low, min(high, 64)),
    )


_INT = st.one_of(
    st.integers(-5, 1000),
    st.sampled_from([0, -1, 2**31, 2**63, -(2**63) - 1, 10**30, 52_560_001]),
    st.integers(),
)
_TIMESTAMPS = st.one_of(
    st.datetimes(
        min_value=dt.datetime(1, 1, 2),
        max_value=dt.datetime(9999, 12, 30),
        timezones=st.just(dt.UTC),
    ),
    st.sampled_from([dt.datetime(1970, 1, 1, tzinfo=dt.UTC)]),
)


def _strategy(shape: Shape, depth: int = 0) -> st.SearchStrategy[Any]:
    kind = shape.type_name
    if kind == "structure":
        members = shape.members  # type: ignore[attr-defined]
        required = set(shape.required_members)  # type: ignore[attr-defined]
        if depth > 4:
            return st.fixed_dictionaries({})
        req = {k: _strategy(v, depth + 1) for k, v in members.items() if k in required}
        opt = {k: _strategy(v, depth + 1) for k, v in members.items() if k not in required}
        return st.fixed_dictionaries(req, optional=opt)
    if kind == "list":
        item = _strategy(shape.member, depth + 1)  # type: ignore[attr-defined]
        return st.lists(item, max_size=3) | st.lists(item, min_size=501, max_size=510).filter(
            lambda _: depth == 0
        )
    if kind == "map":
        key = _strategy(shape.key, depth + 1)  # type: ignore[attr-defined]
        value = _strategy(shape.value, depth + 1)  # type: ignore[attr-defined]
        return st.dictionaries(key, value, max_size=3) | st.dictionaries(
            st.text(min_size=1, max_size=8), st.text(max_size=3), min_size=51, max_size=55
        )
    if kind == "string":
        enum = shape.enum
        if enum:
            return st.sampled_from(enum) | _text()
        return _valid_text(shape) | _text()
    if kind in ("integer", "long"):
        return _INT
    if kind in ("float", "double"):
        return st.floats(allow_nan=False, allow_infinity=False) | _INT
    if kind == "boolean":
        return st.booleans()
    if kind == "timestamp":
        return _TIMESTAMPS
    if kind == "blob":
        return st.binary(max_size=64)
    return st.none()


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _fuzz_operation(server: Any, tally: Tally, service: str, operation: str) -> None:
    """EXAMPLES_PER_OPERATION derandomized inputs for one operation, each one sent."""
    op = _MODELS[service].operation_model(operation)
    client = _client(server, service)
    method = {v: k for k, v in client.meta.method_to_api_mapping.items()}[operation]
    call: Callable[..., Any] = getattr(client, method)
    inputs = _strategy(op.input_shape) if op.input_shape is not None else st.just({})

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(inputs)
    def run(params: dict[str, Any]) -> None:
        try:
            call(**params)
            status, code, detail = 200, "OK", ""
        except ClientError as exc:
            status = _status(exc)
            code = str(exc.response.get("Error", {}).get("Code", ""))
            detail = f"{params!r:.300} {exc}"
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
            tally.client_side += 1  # botocore could not serialize it: nothing was sent
            return
        tally.record(f"{service}:{operation}", status, detail, code)

    run()  # a 5xx is recorded, not raised: no shrinking, the failure lists every one


def test_model_inputs_never_5xx(seeded: Any) -> None:
    """Every implemented operation, fed from its botocore input shape; no 5xx."""
    tally = Tally()
    for service, operation in OPERATIONS:
        _fuzz_operation(seeded, tally, service, operation)
        _still_answers(seeded)
    print(tally.summary("model"))
    assert tally.operations == {f"{s}:{o}" for s, o in OPERATIONS}
    assert tally.server_errors == []


# -- (b) raw-body mutations, signed correctly ---------------------------------------------------

_BASES: list[tuple[str, str, str, dict[str, str], Any]] = [
    # (service, method, path, extra headers, valid JSON body)
    ("backup", "PUT", "/backup-vaults/fuzz-raw", {}, {"BackupVaultTags": {"a": "b"}}),
    (
        "backup",
        "PUT",
        "/backup/plans/",
        {},
        {
            "BackupPlan": {
                "BackupPlanName": "raw",
                "Rules": [
                    {
                        "RuleName": "r",
                        "TargetBackupVaultName": "fuzz-vault",
                        "ScheduleExpression": "cron(0 5 ? * * *)",
                        "StartWindowMinutes": 60,
                        "Lifecycle": {"DeleteAfterDays": 35},
                        "RecoveryPointTags": {"k": "v"},
                    }
                ],
            }
        },
    ),
    (
        "backup",
        "PUT",
        "/backup-jobs",
        {},
        {
            "BackupVaultName": "fuzz-vault",
            "ResourceArn": "arn:aws:backup:us-east-1:000000000000:resource:x",
            "IamRoleArn": "arn:aws:iam::000000000000:role/r",
            "StartWindowMinutes": 60,
        },
    ),
    ("backup", "POST", "/legal-holds/", {}, {"Title": "t", "Description": "d"}),
    (
        "kms",
        "POST",
        "/",
        {"X-Amz-Target": "TrentService.Encrypt"},
        {"KeyId": "alias/fuzz", "Plaintext": "aGVsbG8="},
    ),
    (
        "kms",
        "POST",
        "/",
        {"X-Amz-Target": "TrentService.CreateKey"},
        {"Description": "x", "Tags": [{"TagKey": "a", "TagValue": "b"}]},
    ),
    (
        "snowvault",
        "POST",
        "/_snowvault/v1/TagResource",
        {},
        {"ResourceArn": "arn:aws:backup:us-east-1:000000000000:resource:x", "Tags": {"a": "b"}},
    ),
    ("snowvault", "POST", "/_snowvault/v1/ListResources", {}, {"MaxResults": 5}),
]


def _mutants(rng: random.Random, body: Any) -> Iterator[bytes]:
    raw = json.dumps(body).encode()
    nested = b"[" * 5000 + b"]" * 5000
    for _ in range(MUTANTS_PER_SEED):
        choice = rng.randrange(9)
        if choice == 0:  # truncate
            yield raw[: rng.randrange(len(raw) + 1)]
        elif choice == 1:  # flip a byte
            b = bytearray(raw)
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
            yield bytes(b)
        elif choice == 2:  # deep nesting in a member
            yield _replace_value(rng, body, None, nested)
        elif choice == 3:  # huge or non-finite number
            yield _replace_value(rng, body, rng.choice([10**400, 2**64, -(2**63) - 1, 1e308]), None)
            yield _replace_value(rng, body, None, rng.choice([b"1e999", b"NaN", b"-Infinity"]))
        elif choice == 4:  # lone surrogate
            yield _replace_value(rng, body, None, b'"\\ud800x"')
        elif choice == 5:  # NUL in a string
            yield _replace_value(rng, body, "a\x00b", None)
        elif choice == 6:  # wrong type
            yield _replace_value(rng, body, rng.choice([[], {}, True, None, 3, "s"]), None)
        elif choice == 7:  # raw garbage bytes
            yield bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
        else:  # long string
            yield _replace_value(rng, body, "x" * rng.choice([129, 257, 5000]), None)


def _paths(value: Any, here: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield here
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*here, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*here, i))


_MARK = "\x01MARK\x01"


def _replace_value(rng: random.Random, body: Any, value: Any, raw: bytes | None) -> bytes:
    """``body`` with one member (or the whole) set to ``value`` or to raw JSON text."""
    doc = json.loads(json.dumps(body))
    path = rng.choice(list(_paths(doc)))
    new = _MARK if raw is not None else value
    if not path:
        doc = new
    else:
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = new
    text = json.dumps(doc).encode()
    if raw is not None:
        text = text.replace(json.dumps(_MARK).encode(), raw)
    return text


def _send_signed(
    server: Any, service: str, method: str, path: str, headers: dict[str, str], body: bytes
) -> urllib3.BaseHTTPResponse:
    content_type = "application/x-amz-json-1.1" if service == "kms" else "application/json"
    req = AWSRequest(
        method,
        server.endpoint + path,
        data=body,
        headers={"Content-Type": content_type, **headers},
    )
    creds = Credentials(server.creds["access_key_id"], server.creds["secret_access_key"])
    SigV4Auth(creds, service, server.creds["region"]).add_auth(req)
    return urllib3.request(
        method, req.url, body=body, headers=dict(req.headers.items()), retries=False, timeout=30
    )


def _code(resp: urllib3.BaseHTTPResponse) -> str:
    if resp.status < 300:
        return "OK"
    try:
        return str(json.loads(resp.data).get("__type", resp.status))
    except ValueError:
        return str(resp.status)


def test_raw_mutations_never_5xx(seeded: Any) -> None:
    """Seeded mutants of valid bodies, signed correctly; no 5xx."""
    tally = Tally()
    for index, (service, method, path, headers, body) in enumerate(_BASES):
        rng = random.Random(SEED + index)
        what = f"{service}:{method} {path} {headers.get('X-Amz-Target', '')}".strip()
        for mutant in _mutants(rng, body):
            resp = _send_signed(seeded, service, method, path, headers, mutant)
            tally.record(what, resp.status, f"{mutant[:200]!r} {resp.data[:300]!r}", _code(resp))
        _still_answers(seeded)
    print(tally.summary("raw-mutation"))
    assert tally.server_errors == []
