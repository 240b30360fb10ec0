"""The plugin registry: explicit, built in one place, refusing duplicates."""

from __future__ import annotations

import pytest

from snowvault import plugins
from snowvault.core.errors import InvalidInput
from snowvault.plugins.directory import Directory
from snowvault.plugins.registry import Registry
from snowvault.testing.plugins import InMemoryPlugin


def test_the_builtin_registry_holds_directory_and_nothing_else_yet() -> None:
    reg = plugins.builtin.registry()
    assert reg.types()[0] == "Directory"  # the other built-in types follow it
    assert isinstance(reg.get("Directory"), Directory)
    assert "Directory" in reg and "InMemory" not in reg


def test_an_unknown_type_is_a_clear_invalid_input_naming_the_supported_ones() -> None:
    reg = Registry([Directory(), InMemoryPlugin()])
    with pytest.raises(plugins.errors.UnsupportedResourceType) as err:
        reg.get("PostgreSQL")
    assert isinstance(err.value, InvalidInput)
    assert str(err.value) == (
        "resource type 'PostgreSQL' is not supported (supported: Directory, InMemory)"
    )


def test_types_keep_registration_order() -> None:
    assert Registry([InMemoryPlugin(), Directory()]).types() == ("InMemory", "Directory")


def test_a_type_registered_twice_raises() -> None:
    with pytest.raises(ValueError, match="'Directory' is registered twice"):
        Registry([Directory(), Directory()])


def test_two_types_sharing_an_arn_kind_raise() -> None:
    clash = InMemoryPlugin()
    clash.arn_kind = "directory"
    with pytest.raises(ValueError, match="ARN kind 'directory'"):
        Registry([Directory(), clash])


def test_each_call_builds_a_new_registry() -> None:
    assert plugins.builtin.registry() is not plugins.builtin.registry()
