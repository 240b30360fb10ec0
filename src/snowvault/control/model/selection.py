"""Backup selections (resource assignments): which resources a plan protects.

Pure rules: no I/O. Depends only on ``snowvault.core.errors``.

>>> sel = selection_from_api({"SelectionName": "s", "Resources": ["*"],
...     "Conditions": {"StringEquals": [
...         {"ConditionKey": "aws:ResourceTag/backup", "ConditionValue": "true"}]}})
>>> matches(sel, Resource("arn:aws:ec2:us-east-1:123456789012:volume/v1", "EBS",
...                       {"backup": "true"}))
True

The rule implemented (AWS Backup devguide "Assign resources with AWS CLI" and the
botocore ``BackupSelection`` docs — "Boolean arithmetic similar to IAM policies")::

    base     = Resources matches (OR over patterns)
               OR ListOfTags matches (OR over tag conditions)
               -- or every resource when both Resources and ListOfTags are empty
    selected = base AND every Conditions entry holds (AND over all four operators)
               AND NOT NotResources matches (OR over patterns)

So an empty selection (no Resources, ListOfTags, Conditions) selects every resource
("Backup selects all supported and opted-in storage resources" — opt-in is applied by
the service, not here). A surprise worth knowing: ListOfTags is OR — two tags
``env=prod`` and ``backup=yes`` select resources having *either* tag; for AND use
Conditions.

Details:

- ARN patterns: ``*`` alone matches everything; otherwise ``*`` may only be a whole
  colon-separated ARN field (``arn:aws:ec2:*:*:volume/*``) or the last character
  (prefix match, ``arn:aws:s3:::my-bucket-*``). ``*`` matches zero or more
  non-whitespace characters. ``arn:aws:s3:::*-logs`` is refused as AWS refuses it.
- Conditions keys must be ``aws:ResourceTag/<tag key>``; ListOfTags keys are plain tag
  keys, ConditionType only ``STRINGEQUALS``.
- Bounds (AWS Backup API reference and quotas): Resources and NotResources hold at
  most 500 ARNs each, of which at most 30 may contain a wildcard; ListOfTags holds at
  most 30 entries, and Conditions at most 30 over its four operators.
- Everything is case-sensitive. StringLike/StringNotLike take ``*`` (any run of
  characters) anywhere in the value; every other character is literal.
- A missing tag fails StringEquals/StringLike and satisfies StringNotEquals/
  StringNotLike (IAM's behaviour for negated operators on an absent key).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from snowvault.core import wildcard
from snowvault.core.errors import InvalidInput

TAG_PREFIX = "aws:ResourceTag/"
OPERATORS = ("StringEquals", "StringNotEquals", "StringLike", "StringNotLike")
_NAME_RE = re.compile(r"^[a-zA-Z0-9\-_.]{1,50}$")
MAX_ARNS = 500
MAX_WILDCARD_ARNS = 30
MAX_TAG_CONDITIONS = 30


def _invalid(field_name: str, detail: str) -> InvalidInput:
    return InvalidInput(f"{field_name}: {detail}", field=field_name, detail=detail)


@dataclass(frozen=True)
class Resource:
    arn: str
    resource_type: str
    tags: Mapping[str, str] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash((self.arn, self.resource_type, tuple(sorted(self.tags.items()))))


@dataclass(frozen=True)
class TagCondition:
    """One ListOfTags entry (ConditionType STRINGEQUALS) — ``key`` is the plain tag key."""

    key: str
    value: str


@dataclass(frozen=True)
class Condition:
    """One Conditions entry — ``key`` is the tag key without ``aws:ResourceTag/``."""

    operator: str
    key: str
    value: str


@dataclass(frozen=True)
class Selection:
    selection_name: str = "selection"
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] = ()
    list_of_tags: tuple[TagCondition, ...] = ()
    conditions: tuple[Condition, ...] = ()
    iam_role_arn: str | None = None


# --------------------------------------------------------------------------- validation


def validate_arn_pattern(pattern: str, field_name: str) -> str:
    if not isinstance(pattern, str) or not pattern:
        raise _invalid(field_name, "must be a non-empty ARN or '*'")
    if pattern == "*":
        return pattern
    if not pattern.startswith("arn:"):
        raise _invalid(field_name, f"must be an ARN or '*', got {pattern!r}")
    body = pattern[:-1] if pattern.endswith("*") else pattern
    for part in body.split(":"):
        if "*" in part and part != "*":
            raise _invalid(
                field_name,
                f"wildcard '*' must be a whole ARN field or the last character: {pattern!r}",
            )
    return pattern


def _string(value: object, field_name: str) -> str:
    if not isinstance(value, str):
        raise _invalid(field_name, f"must be a string, got {value!r}")
    return value


def _patterns(values: object, field_name: str) -> tuple[str, ...]:
    if values is None:
        return ()
    if not isinstance(values, Sequence) or isinstance(values, str):
        raise _invalid(field_name, "must be a list of ARNs")
    if len(values) > MAX_ARNS:
        raise _invalid(field_name, f"at most {MAX_ARNS} ARNs, got {len(values)}")
    patterns = tuple(validate_arn_pattern(v, f"{field_name}[{i}]") for i, v in enumerate(values))
    wild = sum(1 for p in patterns if "*" in p)
    if wild > MAX_WILDCARD_ARNS:
        raise _invalid(field_name, f"at most {MAX_WILDCARD_ARNS} ARNs with wildcards, got {wild}")
    return patterns


def _list_of_tags(values: object) -> tuple[TagCondition, ...]:
    if values is None:
        return ()
    if not isinstance(values, Sequence) or isinstance(values, str):
        raise _invalid("ListOfTags", "must be a list")
    if len(values) > MAX_TAG_CONDITIONS:
        raise _invalid("ListOfTags", f"at most {MAX_TAG_CONDITIONS} entries, got {len(values)}")
    out = []
    for i, item in enumerate(values):
        where = f"ListOfTags[{i}]"
        if not isinstance(item, Mapping):
            raise _invalid(where, "must be an object")
        if item.get("ConditionType") != "STRINGEQUALS":
            raise _invalid(f"{where}.ConditionType", "must be STRINGEQUALS")
        key = _string(item.get("ConditionKey"), f"{where}.ConditionKey")
        if not key:
            raise _invalid(f"{where}.ConditionKey", "must not be empty")
        out.append(
            TagCondition(key, _string(item.get("ConditionValue"), f"{where}.ConditionValue"))
        )
    return tuple(out)


def _conditions(values: object) -> tuple[Condition, ...]:
    if values is None:
        return ()
    if not isinstance(values, Mapping):
        raise _invalid("Conditions", "must be an object")
    unknown = set(values) - set(OPERATORS)
    if unknown:
        raise _invalid("Conditions", f"unknown operator(s): {', '.join(sorted(unknown))}")
    out = []
    for op in OPERATORS:
        entries = values.get(op) or []
        if not isinstance(entries, Sequence) or isinstance(entries, str):
            raise _invalid(f"Conditions.{op}", "must be a list")
        for i, item in enumerate(entries):
            where = f"Conditions.{op}[{i}]"
            if not isinstance(item, Mapping):
                raise _invalid(where, "must be an object")
            key = _string(item.get("ConditionKey"), f"{where}.ConditionKey")
            if not key.startswith(TAG_PREFIX) or len(key) == len(TAG_PREFIX):
                raise _invalid(f"{where}.ConditionKey", f"must look like {TAG_PREFIX}<tag key>")
            value = _string(item.get("ConditionValue"), f"{where}.ConditionValue")
            out.append(Condition(op, key[len(TAG_PREFIX) :], value))
    if len(out) > MAX_TAG_CONDITIONS:
        raise _invalid("Conditions", f"at most {MAX_TAG_CONDITIONS} entries, got {len(out)}")
    return tuple(out)


def selection_from_api(data: Mapping[str, Any]) -> Selection:
    """Validate an API ``BackupSelection`` dict into a Selection."""
    if not isinstance(data, Mapping):
        raise _invalid("BackupSelection", "must be an object")
    name = data.get("SelectionName")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise _invalid("SelectionName", "must be 1 to 50 alphanumeric or '-_.' characters")
    role = data.get("IamRoleArn")
    if role is not None and not (isinstance(role, str) and role.startswith("arn:")):
        raise _invalid("IamRoleArn", "must be an IAM role ARN")
    return Selection(
        selection_name=name,
        resources=_patterns(data.get("Resources"), "Resources"),
        not_resources=_patterns(data.get("NotResources"), "NotResources"),
        list_of_tags=_list_of_tags(data.get("ListOfTags")),
        conditions=_conditions(data.get("Conditions")),
        iam_role_arn=role,
    )


# --------------------------------------------------------------------------- matching


def arn_matches(pattern: str, arn: str) -> bool:
    """``*`` covers any run of non-whitespace characters (no backtracking:
    :mod:`snowvault.core.wildcard`; a selection's pattern is the caller's)."""
    return pattern == "*" or wildcard.match(pattern, arn, any_one=False, star_crosses_space=False)


def condition_holds(condition: Condition, tags: Mapping[str, str]) -> bool:
    actual = tags.get(condition.key)
    if condition.operator == "StringEquals":
        return actual == condition.value
    if condition.operator == "StringNotEquals":
        return actual != condition.value
    if condition.operator == "StringLike":
        return actual is not None and wildcard.match(condition.value, actual, any_one=False)
    if condition.operator == "StringNotLike":
        return actual is None or not wildcard.match(condition.value, actual, any_one=False)
    raise _invalid("Conditions", f"unknown operator {condition.operator!r}")


def _first_pattern(patterns: Sequence[str], arn: str) -> str | None:
    return next((p for p in patterns if arn_matches(p, arn)), None)


def _first_tag(tags: Sequence[TagCondition], resource: Resource) -> TagCondition | None:
    return next((t for t in tags if resource.tags.get(t.key) == t.value), None)


def _base_reason(selection: Selection, resource: Resource) -> str | None:
    if not selection.resources and not selection.list_of_tags:
        return "no Resources or ListOfTags given, so every resource is a candidate"
    pattern = _first_pattern(selection.resources, resource.arn)
    if pattern is not None:
        return f"ARN matches Resources pattern {pattern!r}"
    tag = _first_tag(selection.list_of_tags, resource)
    if tag is not None:
        return f"tag {tag.key}={tag.value!r} matches ListOfTags (any one tag suffices)"
    return None


def _failed_condition(selection: Selection, resource: Resource) -> Condition | None:
    return next((c for c in selection.conditions if not condition_holds(c, resource.tags)), None)


def explain(selection: Selection, resource: Resource) -> str:
    """One line saying whether ``resource`` is selected and why (for ``selection preview``)."""
    base = _base_reason(selection, resource)
    if base is None:
        return "excluded: ARN matches no Resources pattern and no ListOfTags tag matches"
    failed = _failed_condition(selection, resource)
    if failed is not None:
        actual = resource.tags.get(failed.key)
        shown = "absent" if actual is None else repr(actual)
        return (
            f"excluded: {base}, but condition {failed.operator} "
            f"{TAG_PREFIX}{failed.key}={failed.value!r} fails (tag is {shown})"
        )
    excluded_by = _first_pattern(selection.not_resources, resource.arn)
    if excluded_by is not None:
        return f"excluded: {base}, but ARN matches NotResources pattern {excluded_by!r}"
    suffix = f" and all {len(selection.conditions)} conditions hold" if selection.conditions else ""
    return f"included: {base}{suffix}"


def matches(selection: Selection, resource: Resource) -> bool:
    """True if the selection assigns ``resource`` to its plan."""
    return (
        _base_reason(selection, resource) is not None
        and _failed_condition(selection, resource) is None
        and _first_pattern(selection.not_resources, resource.arn) is None
    )
