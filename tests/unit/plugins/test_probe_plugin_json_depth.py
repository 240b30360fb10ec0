"""A JSON list in restore Metadata or Properties nested past Python's recursion limit is
bad input, not a crash (helper Q's probe: StartRestoreJob of a Directory point with
``items`` = ``"[" * 3000`` answered 500 InternalFailure, json.loads raising
RecursionError, which none of the parsers caught). And a Directory item with a ``..``
part, refused only once the job ran, is refused when the restore is asked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from snowvault.core.errors import InvalidInput
from snowvault.plugins import composite, directory, mysql, postgresql
from snowvault.plugins.errors import InvalidRestoreTarget

DEEP = "[" * 5000 + "]" * 5000


@pytest.mark.parametrize(
    ("parse", "error"),
    [
        (directory.parse_items, InvalidRestoreTarget),
        (mysql.parse_names, InvalidRestoreTarget),
        (postgresql.parse_databases, InvalidRestoreTarget),
        (composite.parse_members, InvalidInput),
    ],
    ids=["directory-items", "mysql-databases", "postgresql-databases", "composite-members"],
)
@pytest.mark.parametrize("text", [DEEP, "[" * 5000], ids=["closed", "open"])
def test_a_list_nested_too_deep_is_invalid_input(
    parse: Callable[[Any], Any], error: type[Exception], text: str
) -> None:
    with pytest.raises(error):
        parse(text)


@pytest.mark.parametrize("items", ['["../../etc"]', "/a/../../b", '["a/..", "/ok"]'])
def test_an_item_with_dot_dot_is_refused_when_the_restore_is_asked(items: str) -> None:
    """It failed only when the job ran ("include path may not contain '..'"); it is the
    caller's input, refused at StartRestoreJob as the other Metadata errors are."""
    with pytest.raises(InvalidRestoreTarget, match=r"\.\."):
        directory.parse_items(items)
