"""Routing: every backup operation, serialized by botocore itself, routes back to itself.

The router gets the parsed target (``wire.parse_target``), the one form the SigV4 check
and the handlers see too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from botocore import serialize
from botocore.model import OperationModel, ServiceModel
from botocore.session import get_session

from snowvault.interfaces.api import model, routing, wire

BACKUP = model.load("backup")
ROUTER = routing.RestJsonRouter(BACKUP)
_BOTO_MODEL = ServiceModel(get_session().get_service_data("backup"), "backup")
_SERIALIZER = serialize.create_serializer("rest-json", include_validation=False)


def _target(path: str, query: Mapping[str, str] | str = "") -> wire.Target:
    if not isinstance(query, str):
        query = "&".join(f"{quote(k)}={quote(v)}" for k, v in query.items())
    return wire.parse_target(path.encode(), query.encode())


def _sample_params(op: OperationModel) -> dict[str, Any]:
    """Values for every URI label, with characters that need percent-encoding."""
    params: dict[str, Any] = {}
    shape = op.input_shape
    if shape is None:
        return params
    for name, member in shape.members.items():
        if member.serialization.get("location") == "uri":
            params[name] = f"v {name}/ä%"
    return params


def _wire(op_name: str, params: dict[str, Any]) -> tuple[str, str, str]:
    op = _BOTO_MODEL.operation_model(op_name)
    req = _SERIALIZER.serialize_to_request(params, op)
    query = (
        "&".join(f"{k}={v}" for k, v in req["query_string"].items())
        if isinstance(req["query_string"], dict)
        else ""
    )
    return req["method"], req["url_path"], query


@pytest.mark.parametrize("op_name", sorted(BACKUP.operations))
def test_every_backup_operation_routes_to_itself(op_name: str) -> None:
    op = _BOTO_MODEL.operation_model(op_name)
    params = _sample_params(op)
    method, url_path, _ = _wire(op_name, params)
    path, _, fixed_query = url_path.partition("?")

    found = ROUTER.match(method, _target(urlsplit(path).path, fixed_query))

    assert found is not None
    assert found.operation.name == op_name
    for name, value in params.items():
        label = op.input_shape.members[name].serialization["name"]
        assert found.labels[label] == value


def test_encoded_slash_stays_inside_its_label() -> None:
    found = ROUTER.match("GET", _target("/backup-vaults/a%2Fb%20c"))
    assert found is not None
    assert found.operation.name == "DescribeBackupVault"
    assert found.labels == {"backupVaultName": "a/b c"}


def test_trailing_slash_is_optional_and_doubled_slashes_never_reach_the_router() -> None:
    listed = ROUTER.match("GET", _target("/backup-vaults"))
    slashed = ROUTER.match("GET", _target("/backup-vaults/"))
    assert listed is not None and listed.operation.name == "ListBackupVaults"
    assert slashed is not None and slashed.operation.name == "ListBackupVaults"
    with pytest.raises(wire.AmbiguousRequest, match="empty path segment"):
        _target("//backup-vaults//")


def test_an_encoded_dot_segment_never_reaches_the_router() -> None:
    for path in ("/backup/plans/p/selections/..", "/backup/plans/p/selections/%2E%2e"):
        with pytest.raises(wire.AmbiguousRequest, match="dot segment"):
            _target(path)


def test_literal_query_key_picks_the_more_specific_template() -> None:
    with_key = ROUTER.match("POST", _target("/backup-vaults/v/mpaApprovalTeam", "delete"))
    assert with_key is not None
    assert with_key.operation.name == "DisassociateBackupVaultMpaApprovalTeam"


def _synthetic(*templates: str) -> routing.RestJsonRouter:
    ops = {
        f"Op{i}": model.Operation(f"Op{i}", "GET", t, None, None, (), 200)
        for i, t in enumerate(templates)
    }
    return routing.RestJsonRouter(
        model.ServiceModel("x", "rest-json", "x", None, "1.1", ops, frozenset(), {})
    )


def test_most_specific_template_wins_whatever_the_model_order() -> None:
    templates = ["/plans/{Key+}", "/plans/{id}", "/plans/templates", "/plans/{id}?versions"]
    for order in (templates, templates[::-1]):
        router = _synthetic(*order)
        names = {t: f"Op{order.index(t)}" for t in order}
        match = router.match
        assert match("GET", _target("/plans/templates")).operation.name == names["/plans/templates"]  # type: ignore[union-attr]
        assert match("GET", _target("/plans/p1")).operation.name == names["/plans/{id}"]  # type: ignore[union-attr]
        versions = match("GET", _target("/plans/p1", "versions"))
        assert versions is not None and versions.operation.name == names["/plans/{id}?versions"]
        deep = match("GET", _target("/plans/a/b"))
        assert deep is not None and deep.operation.name == names["/plans/{Key+}"]


def test_unknown_path_and_method_do_not_match() -> None:
    assert ROUTER.match("GET", _target("/no-such-thing/here")) is None
    assert ROUTER.match("PATCH", _target("/backup-vaults/v")) is None
    assert ROUTER.match("GET", _target("/backup-%76aults/v")) is not None  # decoded once


def test_greedy_label_takes_the_rest_of_the_path() -> None:
    found = _synthetic("/objects/{Key+}").match("GET", _target("/objects/a/b%2Fc/d%20e"))
    assert found is not None
    assert found.labels == {"Key": "a/b/c/d e"}


def test_query_members_accept_either_casing_and_collect_lists() -> None:
    op = BACKUP.operations["ListBackupVaults"]
    located = routing.gather_rest_input(
        op, {}, [("NextToken", "t1"), ("maxresults", "5"), ("zzz", "ignored")], {}
    )
    assert located == {"NextToken": "t1", "MaxResults": "5"}
    found = routing.gather_rest_input(op, {}, [("nextToken", "t2")], {})
    assert found == {"NextToken": "t2"}


@pytest.mark.parametrize(
    "query",
    [
        [("MaxResults", "1"), ("MaxResults", "100")],  # SigV4 sorts: first-wins is unsigned
        [("NextToken", "a"), ("nextToken", "b")],  # two spellings of one member
        [("zzz", "1"), ("zzz", "2")],
        [("MaxResults", "9223372036854775808")],  # beyond 64 bits
    ],
)
def test_a_repeated_or_overflowing_query_member_is_refused(query: list[tuple[str, str]]) -> None:
    op = BACKUP.operations["ListBackupVaults"]
    with pytest.raises(routing.RejectedInput):
        routing.gather_rest_input(op, {}, query, {})


def test_json_protocol_routes_by_target() -> None:
    kms = routing.JsonTargetRouter(model.load("kms"))
    op = kms.match("TrentService.ListKeys")
    assert op is not None and op.name == "ListKeys"
    assert kms.match("TrentService.Nope") is None
    assert routing.operation_name_from_target("TrentService.Nope") == "Nope"
