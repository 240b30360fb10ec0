"""The Composite plugin's own rules: the members list's shape, the source, the refusals
it can make without the catalog, and the per-member split of restore Metadata."""

from __future__ import annotations

import json

import pytest

from snowvault.control.model import host_paths, jobs
from snowvault.core.errors import InvalidInput
from snowvault.plugins import composite
from snowvault.plugins.base import Resource
from snowvault.plugins.errors import InvalidRestoreTarget

A = "arn:aws:snowvault:us-east-1:111122223333:directory/a"
B = "arn:aws:snowvault:us-east-1:111122223333:postgresql/b"
POLICY = host_paths.NOTHING_ALLOWED


def _check(source: str, members: object) -> composite.Registration:
    raw = members if isinstance(members, str) else json.dumps(members)
    return composite.Composite().check_source(source, POLICY, {"members": raw})


def test_a_group_keeps_its_source_and_canonical_members() -> None:
    reg = _check("group:app", [A, B])
    assert reg.source == "group:app" and not reg.secrets
    assert json.loads(reg.properties["members"]) == [A, B]
    resource = Resource("arn", "Composite", "app", reg.source, reg.properties)
    assert composite.Composite().describe(resource, POLICY) == {"Members": [A, B]}


@pytest.mark.parametrize(
    ("source", "members", "words"),
    [
        ("app", [A], "group:NAME"),
        ("group:", [A], "group:NAME"),
        ("group:app", "not json", "not a JSON list"),
        ("group:app", {"a": A}, "list of ARN strings"),
        ("group:app", [], "1 to 30 members"),
        ("group:app", [f"{A}{i}" for i in range(31)], "1 to 30 members"),
        ("group:app", [A, A], "named twice"),
        ("group:app", ["arn:aws:backup:us-east-1:111122223333:backup-vault:v"], "snowvault"),
        ("group:app", ["arn:aws:snowvault:us-east-1:111122223333:group/g"], "do not nest"),
        ("group:app", [A, B.replace("111122223333", "444455556666")], "one account"),
        ("group:app", [A, B.replace("us-east-1", "eu-west-1")], "one account"),
    ],
)
def test_refusals_before_the_catalog_is_asked(source: str, members: object, words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        _check(source, members)


def test_only_the_members_property_is_taken() -> None:
    with pytest.raises(InvalidInput, match=r"only Properties\.members"):
        composite.Composite().check_source(
            "group:app", POLICY, {"members": json.dumps([A]), "password": "x"}
        )
    with pytest.raises(InvalidInput, match=r"needs Properties\.members"):
        composite.Composite().check_source("group:app", POLICY, {})


def test_restore_metadata_splits_by_member() -> None:
    got = composite.split_metadata(
        {"directory/a.targetPath": "/r", "directory/a.overwrite": "true", "sqlite/x.y.z": "1"}
    )
    assert got == {
        "directory/a": {"targetPath": "/r", "overwrite": "true"},
        "sqlite/x.y": {"z": "1"},
    }
    with pytest.raises(InvalidRestoreTarget, match=r"<member>\.<key>"):
        composite.Composite().check_restore({"targetPath": "/r"}, POLICY)
    with pytest.raises(InvalidRestoreTarget, match="names no member"):
        composite.Composite().check_restore({}, POLICY)


def test_the_parent_outcome_rule() -> None:
    done, failed, partial = "COMPLETED", "FAILED", "PARTIAL"
    assert jobs.composite_outcome({"a": done, "b": done}).state == done
    mixed = jobs.composite_outcome({"a": done, "b": partial})
    assert (mixed.state, mixed.point_status) == (partial, partial)
    assert mixed.status_message == "1 of 2 members backed up whole; b PARTIAL"
    none = jobs.composite_outcome({"a": failed, "b": "ABORTED"})
    assert (none.state, none.message_category) == (failed, "FAILED")
    assert jobs.composite_outcome({}).state == failed
