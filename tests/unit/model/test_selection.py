"""Backup selection matching with AWS semantics, explanations and validation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from snowvault.control.model import selection
from snowvault.core.errors import InvalidInput

VOL = "arn:aws:ec2:us-east-1:123456789012:volume/vol-1"
DB = "arn:aws:rds:us-east-1:123456789012:db:orders"
BUCKET = "arn:aws:s3:::my-bucket-logs"


def res(arn: str, **tags: str) -> selection.Resource:
    return selection.Resource(arn, arn.split(":")[2], tags)


def sel(**fields: Any) -> selection.Selection:
    return selection.selection_from_api({"SelectionName": "s", **fields})


def eq(key: str, value: str) -> dict[str, str]:
    return {"ConditionKey": f"aws:ResourceTag/{key}", "ConditionValue": value}


def tag(key: str, value: str) -> dict[str, str]:
    return {"ConditionType": "STRINGEQUALS", "ConditionKey": key, "ConditionValue": value}


CASES: list[tuple[str, Mapping[str, Any], selection.Resource, bool]] = [
    ("empty selection selects everything", {}, res(VOL), True),
    ("star", {"Resources": ["*"]}, res(DB), True),
    ("exact ARN", {"Resources": [VOL]}, res(VOL), True),
    ("other ARN", {"Resources": [VOL]}, res(DB), False),
    ("type wildcard", {"Resources": ["arn:aws:ec2:*:*:volume/*"]}, res(VOL), True),
    ("type wildcard, other type", {"Resources": ["arn:aws:ec2:*:*:volume/*"]}, res(DB), False),
    ("prefix", {"Resources": ["arn:aws:s3:::my-bucket-*"]}, res(BUCKET), True),
    ("service only", {"Resources": ["arn:aws:ec2:*"]}, res(VOL), True),
    ("ARNs are case-sensitive", {"Resources": [VOL.replace("vol-1", "VOL-1")]}, res(VOL), False),
    ("Resources OR", {"Resources": [DB, VOL]}, res(VOL), True),
    # ListOfTags is OR: either tag is enough (the classic surprise).
    (
        "tags OR: one of two",
        {"ListOfTags": [tag("env", "prod"), tag("backup", "yes")]},
        res(DB, backup="yes"),
        True,
    ),
    (
        "tags OR: neither",
        {"ListOfTags": [tag("env", "prod"), tag("backup", "yes")]},
        res(DB, env="dev"),
        False,
    ),
    (
        "tag values are case-sensitive",
        {"ListOfTags": [tag("env", "prod")]},
        res(DB, env="Prod"),
        False,
    ),
    (
        "tag keys are case-sensitive",
        {"ListOfTags": [tag("env", "prod")]},
        res(DB, Env="prod"),
        False,
    ),
    # Resources OR ListOfTags.
    (
        "resource or tag: by tag",
        {"Resources": [VOL], "ListOfTags": [tag("b", "1")]},
        res(DB, b="1"),
        True,
    ),
    (
        "resource or tag: by ARN",
        {"Resources": [VOL], "ListOfTags": [tag("b", "1")]},
        res(VOL),
        True,
    ),
    # Conditions AND, after Resources.
    (
        "conditions all hold",
        {
            "Resources": ["*"],
            "Conditions": {"StringEquals": [eq("backup", "true"), eq("stage", "prod")]},
        },
        res(VOL, backup="true", stage="prod"),
        True,
    ),
    (
        "conditions: one fails",
        {
            "Resources": ["*"],
            "Conditions": {"StringEquals": [eq("backup", "true"), eq("stage", "prod")]},
        },
        res(VOL, backup="true", stage="dev"),
        False,
    ),
    (
        "conditions alone select among everything",
        {"Conditions": {"StringEquals": [eq("backup", "true")]}},
        res(DB, backup="true"),
        True,
    ),
    (
        "conditions AND ListOfTags",
        {"ListOfTags": [tag("b", "1")], "Conditions": {"StringEquals": [eq("stage", "prod")]}},
        res(DB, b="1", stage="dev"),
        False,
    ),
    (
        "StringLike",
        {"Conditions": {"StringLike": [eq("stage", "*rod*")]}},
        res(DB, stage="production"),
        True,
    ),
    (
        "StringLike: no match",
        {"Conditions": {"StringLike": [eq("stage", "prod*")]}},
        res(DB, stage="preprod"),
        False,
    ),
    (
        "StringLike: ? is literal",
        {"Conditions": {"StringLike": [eq("stage", "pro?")]}},
        res(DB, stage="prod"),
        False,
    ),
    (
        "StringLike: missing tag fails",
        {"Conditions": {"StringLike": [eq("stage", "*")]}},
        res(DB),
        False,
    ),
    (
        "StringNotEquals",
        {"Conditions": {"StringNotEquals": [eq("stage", "dev")]}},
        res(DB, stage="prod"),
        True,
    ),
    (
        "StringNotEquals: equal",
        {"Conditions": {"StringNotEquals": [eq("stage", "dev")]}},
        res(DB, stage="dev"),
        False,
    ),
    (
        "StringNotEquals: missing tag holds",
        {"Conditions": {"StringNotEquals": [eq("stage", "dev")]}},
        res(DB),
        True,
    ),
    (
        "StringNotLike",
        {"Conditions": {"StringNotLike": [eq("stage", "dev*")]}},
        res(DB, stage="development"),
        False,
    ),
    (
        "StringNotLike: missing tag holds",
        {"Conditions": {"StringNotLike": [eq("stage", "dev*")]}},
        res(DB),
        True,
    ),
    # NotResources removes last.
    (
        "NotResources wins over Resources",
        {"Resources": ["*"], "NotResources": ["arn:aws:ec2:*:*:volume/*"]},
        res(VOL),
        False,
    ),
    (
        "NotResources wins over tags",
        {"ListOfTags": [tag("b", "1")], "NotResources": [DB]},
        res(DB, b="1"),
        False,
    ),
    (
        "NotResources leaves others",
        {"Resources": ["*"], "NotResources": ["arn:aws:ec2:*:*:volume/*"]},
        res(DB),
        True,
    ),
    ("NotResources alone", {"NotResources": [DB]}, res(VOL), True),
]


@pytest.mark.parametrize(
    ("name", "fields", "resource", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_matches(
    name: str, fields: Mapping[str, Any], resource: selection.Resource, expected: bool
) -> None:
    s = sel(**fields)
    assert selection.matches(s, resource) is expected
    assert selection.explain(s, resource).startswith("included" if expected else "excluded")


def test_explain_says_why() -> None:
    s = sel(
        Resources=["arn:aws:ec2:*:*:volume/*"],
        NotResources=[VOL],
        Conditions={"StringEquals": [eq("backup", "true")]},
    )
    other = "arn:aws:ec2:us-east-1:123456789012:volume/vol-2"
    assert "condition StringEquals aws:ResourceTag/backup='true' fails (tag is absent)" in (
        selection.explain(s, res(other))
    )
    assert "NotResources pattern" in selection.explain(s, res(VOL, backup="true"))
    assert selection.explain(s, res(other, backup="true")) == (
        "included: ARN matches Resources pattern 'arn:aws:ec2:*:*:volume/*'"
        " and all 1 conditions hold"
    )
    assert "matches no Resources pattern" in selection.explain(s, res(DB, backup="true"))
    t = sel(ListOfTags=[tag("env", "prod"), tag("backup", "yes")])
    assert "any one tag suffices" in selection.explain(t, res(DB, backup="yes"))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"SelectionName": ""}, "SelectionName: must be 1 to 50"),
        ({"SelectionName": "a b"}, "SelectionName: must be 1 to 50"),
        ({"Resources": ["arn:aws:s3:::*-logs"]}, "Resources[0]: wildcard '*' must be a whole"),
        ({"Resources": ["arn:aws:s3:::my-*-bucket"]}, "Resources[0]: wildcard"),
        ({"Resources": [VOL, "vol-1"]}, "Resources[1]: must be an ARN or '*'"),
        ({"Resources": "*"}, "Resources: must be a list"),
        ({"NotResources": ["*x"]}, "NotResources[0]: must be an ARN"),
        (
            {
                "ListOfTags": [
                    {"ConditionType": "STRINGLIKE", "ConditionKey": "a", "ConditionValue": "b"}
                ]
            },
            "ListOfTags[0].ConditionType: must be STRINGEQUALS",
        ),
        (
            {"ListOfTags": [{"ConditionType": "STRINGEQUALS", "ConditionValue": "b"}]},
            "ListOfTags[0].ConditionKey: must be a string",
        ),
        (
            {"Conditions": {"StringEquals": [{"ConditionKey": "backup", "ConditionValue": "x"}]}},
            "Conditions.StringEquals[0].ConditionKey: must look like aws:ResourceTag/<tag key>",
        ),
        ({"Conditions": {"StringMatches": []}}, "Conditions: unknown operator(s): StringMatches"),
        (
            {"Conditions": {"StringLike": [eq("a", 1)]}},  # type: ignore[arg-type]
            "Conditions.StringLike[0].ConditionValue: must be a string",
        ),
        ({"IamRoleArn": "role"}, "IamRoleArn: must be an IAM role ARN"),
    ],
)
def test_invalid_selections_name_the_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput) as err:
        selection.selection_from_api({"SelectionName": "s", **fields})
    assert str(err.value).startswith(message)


def test_resources_are_hashable_and_frozen() -> None:
    r = res(VOL, a="1")
    assert {r, res(VOL, a="1")} == {r}
    with pytest.raises(AttributeError):
        r.arn = "x"  # type: ignore[misc]
