from __future__ import annotations

from dataclasses import replace

import pytest

from snowvault.control.services import accounts, settings, tagging, vaults
from snowvault.control.services.base import Caller, Deps
from snowvault.control.services.errors import RegionNotConfigured
from snowvault.core.errors import AlreadyExists, InvalidInput, NotFound
from snowvault.engine import crypto


def test_access_keys_are_sealed_and_found(
    deps: Deps, root: accounts.Credentials, access_box: crypto.SecretBox
) -> None:
    box = access_box
    found = accounts.lookup_key(deps.engine, box, root.access_key_id)
    assert found == root
    assert accounts.lookup_key(deps.engine, box, "AKIANOPE") is None
    other = crypto.SecretBox(b"x" * 32, "access-keys")
    assert accounts.lookup_key(deps.engine, other, root.access_key_id) is None
    assert root.secret_access_key not in repr(root)


def test_reset_keeps_root_account_and_keys(
    deps: Deps, caller: Caller, root: accounts.Credentials, access_box: crypto.SecretBox
) -> None:
    vaults.create(deps, caller, "gone")
    accounts.reset_keep_root(deps.engine)
    assert accounts.lookup_key(deps.engine, access_box, root.access_key_id) == root
    with pytest.raises(NotFound):
        vaults.get(deps, caller, "gone")


def test_create_describe_delete_vault(deps: Deps, caller: Caller) -> None:
    row = vaults.create(deps, caller, "main", tags={"env": "prod"})
    assert row["arn"] == "arn:aws:backup:us-east-1:111122223333:backup-vault:main"
    assert row["encryption_key_arn"].startswith("arn:aws:kms:us-east-1:111122223333:key/")
    assert row["encryption_key_type"] == "AWS_OWNED_KMS_KEY"
    assert tagging.list_tags(deps, caller, row["arn"]) == {"env": "prod"}
    with vaults.open_repository(deps, row) as repo:
        assert repo.list_manifests() == []
    with pytest.raises(AlreadyExists):
        vaults.create(deps, caller, "main")
    vaults.delete(deps, caller, "main")
    with pytest.raises(NotFound):
        vaults.get(deps, caller, "main")


def test_creator_request_id_makes_create_idempotent(deps: Deps, caller: Caller) -> None:
    first = vaults.create(deps, caller, "idem", creator_request_id="req-1")
    again = vaults.create(deps, caller, "idem", creator_request_id="req-1")
    assert again["arn"] == first["arn"] and again["storage_url"] == first["storage_url"]
    with pytest.raises(AlreadyExists):
        vaults.create(deps, caller, "idem", creator_request_id="req-2")


def test_unconfigured_region_is_a_clear_input_error(deps: Deps, caller: Caller) -> None:
    with pytest.raises(RegionNotConfigured, match="eu-west-1 is not configured"):
        vaults.create(deps, replace(caller, region="eu-west-1"), "v")


def test_customer_keys_are_refused_until_kms(deps: Deps, caller: Caller) -> None:
    with pytest.raises(InvalidInput, match="EncryptionKeyArn"):
        vaults.create(deps, caller, "k", encryption_key_arn="arn:aws:kms:us-east-1:1:key/x")


def test_other_accounts_cannot_tag_my_vault(deps: Deps, caller: Caller) -> None:
    arn = vaults.create(deps, caller, "mine")["arn"]
    with pytest.raises(NotFound):
        tagging.tag(deps, replace(caller, account_id="999999999999"), arn, {"a": "b"})


def test_region_settings_default_and_merge(deps: Deps, caller: Caller) -> None:
    every = dict.fromkeys(deps.plugins.types(), True)  # Directory and the other built-ins
    assert settings.region_settings(deps, caller)["opt_in"] == every
    settings.update_region_settings(deps, caller, opt_in={"Directory": False}, management=None)
    assert settings.region_settings(deps, caller)["opt_in"] == every | {"Directory": False}
    with pytest.raises(InvalidInput):
        settings.update_region_settings(deps, caller, opt_in={"EFS": True}, management=None)


def test_catalog_settings_delete(deps: Deps) -> None:
    from snowvault.control import catalog

    with catalog.db.transaction(deps.engine) as conn:
        catalog.settings.put(conn, "prune-pending:x", "2026-01-01")
        catalog.settings.delete(conn, "prune-pending:x")
        catalog.settings.delete(conn, "never-set")
        assert catalog.settings.get(conn, "prune-pending:x", "gone") == "gone"
