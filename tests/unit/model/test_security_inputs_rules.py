"""Tag and selection bounds as pure rules (the API checks the same numbers first)."""

from __future__ import annotations

import pytest

from snowvault.control.model import selection, tags
from snowvault.core.errors import InvalidInput


def test_tags_at_the_limits_pass() -> None:
    many = {f"{i:03d}" + "k" * 125: "v" * 256 for i in range(50)}
    assert tags.validate(many, "Tags") == many
    assert tags.validate({"k": ""}, "Tags") == {"k": ""}


@pytest.mark.parametrize(
    ("given", "needle"),
    [
        ({"k": "v" * 257}, "at most 256 characters"),
        ({"k": "v" * 300}, "at most 256 characters"),
        ({"k" * 129: "v"}, "1 to 128 characters"),
        ({"": "v"}, "1 to 128 characters"),
        ({"aws:x": "v"}, "reserved prefix 'aws:'"),
        ({"Aws:x": "v"}, "reserved prefix 'aws:'"),
        ({str(i): "v" for i in range(51)}, "at most 50 tags per resource, got 51"),
        ({"k": 1}, "string keys to string values"),
        (["k"], "string keys to string values"),
    ],
)
def test_bad_tags_name_the_rule(given: object, needle: str) -> None:
    with pytest.raises(InvalidInput) as err:
        tags.validate(given, "BackupVaultTags")
    assert str(err.value).startswith("BackupVaultTags: ")
    assert needle in str(err.value)
    assert len(str(err.value)) < 200


def test_existing_tags_count_toward_the_50() -> None:
    existing = [f"old{i}" for i in range(45)]
    tags.check_total(existing, {f"new{i}": "" for i in range(5)}, "Tags")
    tags.check_total(existing, {"old1": "replaced", **{f"n{i}": "" for i in range(5)}}, "Tags")
    with pytest.raises(InvalidInput, match="has 45 and this request would make it 51"):
        tags.check_total(existing, {f"new{i}": "" for i in range(6)}, "Tags")


def _sel(**members: object) -> dict[str, object]:
    return {"SelectionName": "s", **members}


def test_selection_takes_500_arns_and_30_wildcards() -> None:
    arns = [f"arn:aws:ec2:r:1:volume/v{i}" for i in range(470)] + [
        f"arn:aws:ec2:r:1:volume/w{i}*" for i in range(30)
    ]
    sel = selection.selection_from_api(_sel(Resources=arns, NotResources=arns))
    assert len(sel.resources) == len(sel.not_resources) == 500


@pytest.mark.parametrize(
    ("members", "needle"),
    [
        ({"Resources": [f"arn:aws:ec2:r:1:volume/{i}" for i in range(501)]}, "at most 500 ARNs"),
        ({"NotResources": ["*"] * 501}, "NotResources: at most 500 ARNs"),
        (
            {"Resources": [f"arn:aws:ec2:r:1:volume/{i}*" for i in range(31)]},
            "at most 30 ARNs with wildcards, got 31",
        ),
        (
            {
                "ListOfTags": [
                    {"ConditionType": "STRINGEQUALS", "ConditionKey": "k", "ConditionValue": "v"}
                ]
                * 31
            },
            "ListOfTags: at most 30 entries",
        ),
        (
            {
                "Conditions": {
                    "StringEquals": [{"ConditionKey": "aws:ResourceTag/k", "ConditionValue": "v"}]
                    * 16,
                    "StringLike": [{"ConditionKey": "aws:ResourceTag/k", "ConditionValue": "v"}]
                    * 15,
                }
            },
            "Conditions: at most 30 entries, got 31",
        ),
    ],
)
def test_selection_bounds(members: dict[str, object], needle: str) -> None:
    with pytest.raises(InvalidInput, match=needle):
        selection.selection_from_api(_sel(**members))
