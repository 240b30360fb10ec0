"""The key service's rules with a FakeClock: KeyId forms, aliases, the AWS managed key,
enable/disable, rotation (automatic to the day, on demand), the deletion window to the
second, and vaults wrapped by KMS keys (disabled key, rotation, crypto-shredding)."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from helpers.access_world import ACCOUNT, OTHER_ACCOUNT, REGION, World, admin_policy
from snowvault.control import catalog
from snowvault.control.services import errors as err
from snowvault.control.services import kms_vault_keys, vaults
from snowvault.control.services.base import Deps
from snowvault.control.services.kms import Kms
from snowvault.core.errors import InvalidInput, PermissionDenied
from snowvault.engine.backends.url import open_backend
from snowvault.engine.crypto import kms as kms_crypto
from snowvault.engine.repository import Repository
from snowvault.testing import FakeClock

ROOT = b"k" * 32


class KmsWorld(World):
    def __init__(self, tmp_path: Path, clock: FakeClock) -> None:
        super().__init__(tmp_path, clock)
        self.kms = Kms(self.deps.engine, ROOT, clock)
        self.keys = kms_vault_keys.KmsVaultKeys(self.kms, self.deps.engine)
        self.deps = Deps(
            self.deps.engine, clock, self.deps.storage, self.keys, self.deps.path_policy
        )

    def vault_with(self, name: str, key: str | None) -> dict[str, Any]:
        return vaults.create(self.deps, self.root, name, encryption_key_arn=key)

    def sweep(self) -> None:
        self.keys.sweep(self.clock.now())


@pytest.fixture
def w(tmp_path: Path, clock: FakeClock) -> KmsWorld:
    return KmsWorld(tmp_path, clock)


def test_a_key_is_found_by_id_arn_alias_and_alias_arn(w: KmsWorld) -> None:
    key = w.kms.create_key(w.root, description="d", tags={"team": "ops"})
    assert key["arn"] == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key['key_id']}"
    w.kms.create_alias(w.root, "alias/app", key["key_id"])
    alias_arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/app"
    for ref in (key["key_id"], key["arn"], "alias/app", alias_arn):
        assert w.kms.describe_key(w.root, ref)["arn"] == key["arn"]
    assert w.kms.list_resource_tags(w.root, "alias/app") == {"team": "ops"}
    with pytest.raises(err.KeyNotFound):
        w.kms.describe_key(w.root, "alias/nope")


def test_keys_of_another_account_are_not_found(w: KmsWorld) -> None:
    key = w.kms.create_key(w.root)
    other = dataclasses.replace(w.root, account_id=OTHER_ACCOUNT)
    with pytest.raises(err.KeyNotFound):
        w.kms.describe_key(other, key["arn"])
    blob, _ = w.kms.encrypt(w.root, key["arn"], b"x")
    with pytest.raises(err.InvalidCiphertext):
        w.kms.decrypt(other, blob)


def test_alias_rules(w: KmsWorld) -> None:
    key = w.kms.create_key(w.root)
    with pytest.raises(err.ReservedAlias):
        w.kms.create_alias(w.root, "alias/aws/mine", key["arn"])
    with pytest.raises(err.InvalidAliasName):
        w.kms.create_alias(w.root, "mine", key["arn"])
    w.kms.create_alias(w.root, "alias/mine", key["arn"])
    with pytest.raises(err.AliasExists):
        w.kms.create_alias(w.root, "alias/mine", key["arn"])
    w.kms.delete_alias(w.root, "alias/mine")
    with pytest.raises(err.AliasNotFound):
        w.kms.delete_alias(w.root, "alias/mine")


def test_encrypt_decrypt_with_context(w: KmsWorld) -> None:
    key = w.kms.create_key(w.root)
    blob, arn = w.kms.encrypt(w.root, key["key_id"], b"secret", {"a": "1", "b": "2"})
    assert arn == key["arn"] and b"secret" not in blob
    assert w.kms.decrypt(w.root, blob, {"b": "2", "a": "1"}) == (b"secret", arn)
    with pytest.raises(err.InvalidCiphertext):
        w.kms.decrypt(w.root, blob, {"a": "1"})
    damaged = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(err.InvalidCiphertext):
        w.kms.decrypt(w.root, damaged, {"a": "1", "b": "2"})
    with pytest.raises(err.InvalidCiphertext):
        w.kms.decrypt(w.root, b"not a blob")
    other = w.kms.create_key(w.root)
    with pytest.raises(err.IncorrectKey):
        w.kms.decrypt(w.root, blob, {"a": "1", "b": "2"}, key_ref=other["arn"])


def test_generate_data_key_sizes(w: KmsWorld) -> None:
    key = w.kms.create_key(w.root)
    plain, blob, _ = w.kms.generate_data_key(w.root, key["arn"], key_spec="AES_128")
    assert len(plain) == 16 and w.kms.decrypt(w.root, blob)[0] == plain
    assert len(w.kms.generate_data_key(w.root, key["arn"], number_of_bytes=64)[0]) == 64
    with pytest.raises(err.KmsValidation):
        w.kms.generate_data_key(w.root, key["arn"])


def test_material_is_sealed_per_key_and_version_and_never_in_the_row(w: KmsWorld) -> None:
    key = w.kms.create_key(w.root)
    assert not any(isinstance(v, bytes) for v in key.values())
    with catalog.db.transaction(w.deps.engine) as conn:
        (version,) = catalog.kms.versions(conn, key["arn"])
    box = kms_crypto.MaterialBox(ROOT)
    material = box.open(version["sealed_material"], key["arn"], 1)
    assert len(material) == 32 and material not in version["sealed_material"]
    with pytest.raises(Exception, match="authentication"):
        box.open(version["sealed_material"], key["arn"], 2)
    with pytest.raises(Exception, match="authentication"):
        kms_crypto.MaterialBox(b"x" * 32).open(version["sealed_material"], key["arn"], 1)


def test_disabled_key_refuses_crypto_until_enabled(w: KmsWorld) -> None:
    key = w.kms.create_key(w.root)
    blob, _ = w.kms.encrypt(w.root, key["arn"], b"x")
    w.kms.disable_key(w.root, key["arn"])
    assert w.kms.describe_key(w.root, key["arn"])["key_state"] == "Disabled"
    with pytest.raises(err.KeyDisabled):
        w.kms.encrypt(w.root, key["arn"], b"x")
    with pytest.raises(err.KeyDisabled):
        w.kms.decrypt(w.root, blob)
    with pytest.raises(err.KeyDisabled):
        w.kms.rotate_key_on_demand(w.root, key["arn"])
    w.kms.enable_key(w.root, key["arn"])
    assert w.kms.decrypt(w.root, blob)[0] == b"x"


def test_on_demand_rotation_keeps_old_versions_decrypting(w: KmsWorld) -> None:
    key = w.kms.create_key(w.root)
    old, _ = w.kms.encrypt(w.root, key["arn"], b"old")
    w.kms.rotate_key_on_demand(w.root, key["arn"])
    new, _ = w.kms.encrypt(w.root, key["arn"], b"new")
    assert kms_crypto.header(old)[1] == 1 and kms_crypto.header(new)[1] == 2
    assert w.kms.decrypt(w.root, old)[0] == b"old"
    assert w.kms.decrypt(w.root, new)[0] == b"new"
    for _ in range(9):
        w.kms.rotate_key_on_demand(w.root, key["arn"])
    with pytest.raises(err.RotationLimitExceeded):
        w.kms.rotate_key_on_demand(w.root, key["arn"])


def test_automatic_rotation_happens_on_its_day(w: KmsWorld) -> None:
    key = w.kms.create_key(w.root)
    with pytest.raises(err.KmsValidation):
        w.kms.enable_key_rotation(w.root, key["arn"], 89)
    w.kms.enable_key_rotation(w.root, key["arn"])
    start = w.clock.now()
    status = w.kms.rotation_status(w.root, key["arn"])
    assert status["next_rotation_date"] == start + timedelta(days=365)
    w.clock.advance(timedelta(days=365) - timedelta(seconds=1))
    w.sweep()
    assert w.kms.describe_key(w.root, key["arn"])["current_version"] == 1
    w.clock.advance(timedelta(seconds=1))
    w.sweep()
    rotated = w.kms.describe_key(w.root, key["arn"])
    assert rotated["current_version"] == 2
    assert rotated["next_rotation_date"] == start + timedelta(days=730)


def test_deletion_window_to_the_second_then_material_is_destroyed(w: KmsWorld) -> None:
    key = w.kms.create_key(w.root)
    blob, _ = w.kms.encrypt(w.root, key["arn"], b"x")
    for bad in (6, 31):
        with pytest.raises(err.KmsValidation):
            w.kms.schedule_key_deletion(w.root, key["arn"], bad)
    pending = w.kms.schedule_key_deletion(w.root, key["arn"], 7)
    assert pending["key_state"] == "PendingDeletion"
    assert pending["deletion_date"] == w.clock.now() + timedelta(days=7)
    with pytest.raises(err.KeyInvalidState):
        w.kms.encrypt(w.root, key["arn"], b"x")
    with pytest.raises(err.KeyInvalidState):
        w.kms.enable_key(w.root, key["arn"])
    with pytest.raises(err.KeyInvalidState):
        w.kms.schedule_key_deletion(w.root, key["arn"], 7)
    w.clock.advance(timedelta(days=7) - timedelta(seconds=1))
    w.sweep()
    assert w.kms.describe_key(w.root, key["arn"])["key_state"] == "PendingDeletion"
    w.clock.advance(timedelta(seconds=1))
    w.sweep()
    with pytest.raises(err.KeyNotFound):
        w.kms.describe_key(w.root, key["arn"])
    with pytest.raises(err.KeyNotFound):
        w.kms.decrypt(w.root, blob)
    with catalog.db.transaction(w.deps.engine) as conn:
        assert catalog.kms.versions(conn, key["arn"]) == []


def test_cancel_deletion_leaves_the_key_disabled(w: KmsWorld) -> None:
    key = w.kms.create_key(w.root)
    with pytest.raises(err.KeyInvalidState):
        w.kms.cancel_key_deletion(w.root, key["arn"])
    assert w.kms.schedule_key_deletion(w.root, key["arn"])["pending_window_days"] == 30
    back = w.kms.cancel_key_deletion(w.root, key["arn"])
    assert back["key_state"] == "Disabled" and back["deletion_date"] is None
    w.clock.advance(timedelta(days=31))
    w.sweep()
    assert w.kms.describe_key(w.root, key["arn"])["key_state"] == "Disabled"


def test_the_aws_managed_backup_key_is_created_once_per_account_and_region(w: KmsWorld) -> None:
    first = w.kms.describe_key(w.root, "alias/aws/backup")
    assert first["key_manager"] == "AWS" and first["rotation_enabled"] is True
    assert w.kms.describe_key(w.root, "alias/aws/backup")["arn"] == first["arn"]
    elsewhere = dataclasses.replace(w.root, region="eu-west-1")
    assert w.kms.describe_key(elsewhere, "alias/aws/backup")["arn"] != first["arn"]
    for action in (w.kms.disable_key, w.kms.schedule_key_deletion, w.kms.rotate_key_on_demand):
        with pytest.raises(err.UnsupportedKmsOperation):
            action(w.root, "alias/aws/backup")
    with pytest.raises(err.ReservedAlias):
        w.kms.delete_alias(w.root, "alias/aws/backup")


# ---------------------------------------------------------------------- vaults


def test_a_default_vault_uses_the_managed_key(w: KmsWorld) -> None:
    vault = w.vault_with("plain", None)
    managed = w.kms.describe_key(w.root, "alias/aws/backup")
    assert vault["encryption_key_arn"] == managed["arn"]
    assert vault["encryption_key_type"] == "AWS_OWNED_KMS_KEY"


def test_a_disabled_customer_key_stops_backups_and_restores_until_enabled(w: KmsWorld) -> None:
    key = w.kms.create_key(w.root)
    vault = w.vault_with("cmk", key["key_id"])
    assert vault["encryption_key_arn"] == key["arn"]
    assert vault["encryption_key_type"] == "CUSTOMER_MANAGED_KMS_KEY"
    rp = w.backup("cmk", None)
    assert rp.encryption_key_arn == key["arn"]
    w.kms.disable_key(w.root, key["arn"])
    message = w.failed_backup_message("cmk", None)
    assert "is disabled" in message and key["arn"] in message
    with pytest.raises(err.KeyDisabled), vaults.open_repository(w.deps, vault):
        pass
    w.kms.enable_key(w.root, key["arn"])
    w.assert_intact("cmk", [rp, w.backup("cmk", None)])


def test_rotation_keeps_old_recovery_points_restorable(w: KmsWorld) -> None:
    key = w.kms.create_key(w.root)
    w.vault_with("rot", key["arn"])
    before = w.backup("rot", None)
    w.kms.rotate_key_on_demand(w.root, key["arn"])
    w.kms.rotate_key_on_demand(w.root, key["arn"])
    w.assert_intact("rot", [before, w.backup("rot", None)])


def test_a_vault_cannot_be_created_with_a_disabled_key(w: KmsWorld) -> None:
    key = w.kms.create_key(w.root)
    w.kms.disable_key(w.root, key["arn"])
    # the backup API words it in its own model's codes (InvalidParameterValueException)
    with pytest.raises(InvalidInput) as raised:
        w.vault_with("nope", key["arn"])
    assert isinstance(raised.value.__cause__, err.KeyDisabled)


def test_deleting_the_key_shreds_the_vault_including_exported_slots(w: KmsWorld) -> None:
    key = w.kms.create_key(w.root)
    vault = w.vault_with("shred", key["arn"])
    w.backup("shred", None)
    passphrase = "correct horse battery staple"
    out = kms_vault_keys.export_recovery_key(w.deps, w.root, "shred", passphrase)
    assert out["RepositoryUrl"] == vault["storage_url"]
    backend = open_backend(out["RepositoryUrl"])
    Repository.open(backend, password=passphrase).close()  # the server is not needed
    w.kms.schedule_key_deletion(w.root, key["arn"], 7)
    w.clock.advance(timedelta(days=7))
    w.sweep()
    with (
        pytest.raises(err.KeyDeleted, match="unrecoverable"),
        vaults.open_repository(w.deps, vault),
    ):
        pass
    with pytest.raises(Exception) as caught:
        Repository.open(backend, password=passphrase)
    assert "KeyDeleted" not in type(caught.value).__name__
    backend.close()


def test_export_needs_a_usable_key_and_a_long_passphrase(w: KmsWorld) -> None:
    key = w.kms.create_key(w.root)
    w.vault_with("exp", key["arn"])
    with pytest.raises(InvalidInput):
        kms_vault_keys.export_recovery_key(w.deps, w.root, "exp", "short")
    w.kms.disable_key(w.root, key["arn"])
    with pytest.raises(err.KeyDisabled):
        kms_vault_keys.export_recovery_key(w.deps, w.root, "exp", "a long passphrase")


def test_a_second_creation_of_the_managed_key_returns_the_first(w: KmsWorld) -> None:
    first = w.kms.managed_backup_key(ACCOUNT, REGION)
    with catalog.db.transaction(w.deps.engine) as conn:
        again = w.kms._create_managed(conn, ACCOUNT, REGION)  # the loser of a race
    assert again["arn"] == first["arn"]
    assert [k["arn"] for k in w.kms.list_keys(w.root).items] == [first["arn"]]


def test_export_needs_its_own_permission(w: KmsWorld) -> None:
    w.vault_with("gated", None)
    admin = w.user("admin", admin_policy())
    with pytest.raises(PermissionDenied, match="snowvault:ExportRecoveryKey"):
        kms_vault_keys.export_recovery_key(w.deps, admin, "gated", "a long passphrase")


# ---------------------------------------------------------------- key policies (issue 10)


_KMS_ALL = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}],
    }
)


def _key_policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


ROOT_ALL = {
    "Sid": "Enable IAM User Permissions",
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    "Action": "kms:*",
    "Resource": "*",
}


def test_a_new_key_has_the_default_policy_named_default(w: KmsWorld) -> None:
    key = w.kms.create_key(w.root)
    policy = json.loads(w.kms.get_key_policy(w.root, key["arn"]))
    assert policy["Statement"] == [ROOT_ALL]
    assert w.kms.get_key_policy(w.root, key["arn"], "default") == w.kms.get_key_policy(
        w.root, key["arn"]
    )
    assert w.kms.list_key_policies(w.root, key["key_id"]) == ["default"]
    with pytest.raises(err.PolicyNotFound):
        w.kms.get_key_policy(w.root, key["arn"], "custom")


def test_put_key_policy_replaces_it(w: KmsWorld) -> None:
    key = w.kms.create_key(w.root)
    deny = {"Sid": "NoBob", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:Sign"}
    document = _key_policy(ROOT_ALL, dict(deny, Resource="*"))
    w.kms.put_key_policy(w.root, key["arn"], document)
    assert w.kms.get_key_policy(w.root, key["arn"]) == document


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ("not json", "not valid JSON"),
        (_key_policy({"Effect": "Allow", "Action": "kms:*", "Resource": "*"}), "Principal"),
        (_key_policy(dict(ROOT_ALL, Effect="Maybe")), "Effect"),
        ("[]", "JSON object"),
    ],
)
def test_create_key_refuses_a_malformed_policy(w: KmsWorld, document: str, problem: str) -> None:
    with pytest.raises(err.MalformedPolicy, match=problem):
        w.kms.create_key(w.root, policy=document)
    assert w.kms.list_keys(w.root).items == []


def test_the_lockout_safety_check_then_the_policy_binds_even_the_root_user(w: KmsWorld) -> None:
    alice = w.user("alice").principal_arn  # no identity policy: the key policy lets her in
    only_alice = _key_policy(
        {"Effect": "Allow", "Principal": {"AWS": alice}, "Action": "kms:*", "Resource": "*"}
    )
    with pytest.raises(err.MalformedPolicy, match="will not allow you to update"):
        w.kms.create_key(w.root, policy=only_alice)
    key = w.kms.create_key(w.root, policy=only_alice, bypass_lockout_check=True)
    with pytest.raises(PermissionDenied, match="no resource-based policy allows the kms:Describe"):
        w.kms.describe_key(w.root, key["arn"])
    assert w.kms.describe_key(w.caller(alice), key["arn"])["arn"] == key["arn"]
    only_bob = only_alice.replace("user/alice", "user/bob")
    with pytest.raises(err.MalformedPolicy, match="will not allow you to update"):
        w.kms.put_key_policy(w.caller(alice), key["arn"], only_bob)
    w.kms.put_key_policy(w.caller(alice), key["arn"], _key_policy(ROOT_ALL))  # delegates to IAM
    assert w.kms.describe_key(w.root, key["arn"])["arn"] == key["arn"]
    with pytest.raises(PermissionDenied, match="no identity-based policy allows"):
        w.kms.describe_key(w.caller(alice), key["arn"])  # now IAM decides, and has nothing


def test_a_key_policy_deny_holds_for_that_key_only(w: KmsWorld) -> None:
    bob = w.user("bob", _KMS_ALL)  # the identity policy allows everything in KMS
    deny_bob = {
        "Sid": "NoBobEncrypt",
        "Effect": "Deny",
        "Principal": {"AWS": bob.principal_arn},
        "Action": ["kms:Encrypt", "kms:GenerateDataKey*"],
        "Resource": "*",
    }
    key = w.kms.create_key(w.root, policy=_key_policy(ROOT_ALL, deny_bob))
    other = w.kms.create_key(w.root)
    with pytest.raises(PermissionDenied, match=r"kms:Encrypt .* explicit deny"):
        w.kms.encrypt(bob, key["arn"], b"x")
    with pytest.raises(PermissionDenied, match="kms:GenerateDataKeyWithoutPlaintext"):
        w.kms.generate_data_key_without_plaintext(bob, key["arn"], key_spec="AES_256")
    assert w.kms.describe_key(bob, key["arn"])["arn"] == key["arn"]  # not denied
    blob, _ = w.kms.encrypt(w.root, key["arn"], b"x")
    assert w.kms.decrypt(bob, blob)[0] == b"x"
    assert w.kms.encrypt(bob, other["arn"], b"y")[1] == other["arn"]


def test_rotation_status_of_a_key_pending_deletion_is_off_until_cancelled(w: KmsWorld) -> None:
    key = w.kms.create_key(w.root)
    w.kms.enable_key_rotation(w.root, key["arn"], 180)
    w.kms.schedule_key_deletion(w.root, key["arn"], 7)
    status = w.kms.rotation_status(w.root, key["arn"])
    assert status["rotation_enabled"] is False and status["next_rotation_date"] is None
    w.kms.cancel_key_deletion(w.root, key["arn"])
    status = w.kms.rotation_status(w.root, key["arn"])
    assert status["rotation_enabled"] is True and status["rotation_period_days"] == 180


def test_update_description_and_alias(w: KmsWorld) -> None:
    first, second = w.kms.create_key(w.root), w.kms.create_key(w.root)
    w.kms.update_key_description(w.root, first["arn"], "renamed")
    assert w.kms.describe_key(w.root, first["arn"])["description"] == "renamed"
    w.kms.create_alias(w.root, "alias/app", first["key_id"])
    w.advance(seconds=5)
    w.kms.update_alias(w.caller(), "alias/app", second["arn"])
    assert w.kms.describe_key(w.root, "alias/app")["arn"] == second["arn"]
    [alias] = w.kms.list_aliases(w.root).items
    assert alias["last_updated_date"] > alias["creation_date"]
    with pytest.raises(err.AliasNotFound):
        w.kms.update_alias(w.root, "alias/none", second["arn"])
    with pytest.raises(err.ReservedAlias):
        w.kms.update_alias(w.root, "alias/aws/backup", second["arn"])


def test_reencrypt_moves_a_ciphertext_to_another_key(w: KmsWorld) -> None:
    a, b = w.kms.create_key(w.root), w.kms.create_key(w.root)
    blob, _ = w.kms.encrypt(w.root, a["arn"], b"secret", {"k": "v"})
    new, source, target = w.kms.re_encrypt(
        w.root, blob, b["key_id"], source_context={"k": "v"}, destination_context={"n": "1"}
    )
    assert (source, target) == (a["arn"], b["arn"])
    assert w.kms.decrypt(w.root, new, {"n": "1"}) == (b"secret", b["arn"])
    with pytest.raises(err.InvalidCiphertext):
        w.kms.re_encrypt(w.root, blob, b["arn"])  # the source context is missing


def test_generate_random_and_data_key_without_plaintext(w: KmsWorld) -> None:
    assert len(w.kms.generate_random(1024)) == 1024
    assert w.kms.generate_random(32) != w.kms.generate_random(32)
    for bad in (None, 0, 1025):
        with pytest.raises(err.KmsValidation):
            w.kms.generate_random(bad)
    key = w.kms.create_key(w.root)
    blob, arn = w.kms.generate_data_key_without_plaintext(w.root, key["arn"], number_of_bytes=48)
    assert arn == key["arn"] and len(w.kms.decrypt(w.root, blob)[0]) == 48


def test_list_key_rotations_names_each_rotation(w: KmsWorld) -> None:
    key = w.kms.create_key(w.root)
    assert w.kms.list_key_rotations(w.root, key["arn"]) == []
    w.kms.rotate_key_on_demand(w.root, key["arn"])
    w.kms.enable_key_rotation(w.root, key["arn"], 90)
    w.advance(days=90)
    w.sweep()
    kinds = [r["rotation_type"] for r in w.kms.list_key_rotations(w.root, key["arn"])]
    assert kinds == ["ON_DEMAND", "AUTOMATIC"]


def test_grants_are_kept_listed_retired_and_revoked(w: KmsWorld) -> None:
    key = w.kms.create_key(w.root)
    backup_role = f"arn:aws:iam::{ACCOUNT}:role/backup"
    ops = ["Decrypt", "GenerateDataKey"]
    grant = w.kms.create_grant(w.root, key["arn"], backup_role, ops, name="g", retiring=backup_role)
    again = w.kms.create_grant(w.root, key["arn"], backup_role, ops, name="g", retiring=backup_role)
    assert again["grant_id"] == grant["grant_id"]  # a retry with the same name and parameters
    other = w.kms.create_grant(w.root, key["arn"], backup_role, ["Encrypt", "RetireGrant"])
    listed = [g["grant_id"] for g in w.kms.list_grants(w.root, key["arn"]).items]
    assert listed == [grant["grant_id"], other["grant_id"]]
    retirable = w.kms.list_retirable_grants(w.root, backup_role).items
    assert [g["grant_id"] for g in retirable] == [grant["grant_id"]]
    with pytest.raises(err.KmsValidation):
        w.kms.create_grant(w.root, key["arn"], backup_role, ["Fly"])

    stranger = w.caller(f"arn:aws:iam::{ACCOUNT}:user/stranger")
    with pytest.raises(PermissionDenied):
        w.kms.retire_grant(stranger, grant_token=grant["grant_token"])
    w.kms.retire_grant(w.caller(backup_role), grant_token=grant["grant_token"])
    with pytest.raises(err.InvalidGrantToken):
        w.kms.retire_grant(w.root, grant_token=grant["grant_token"])
    with pytest.raises(err.GrantNotFound):
        w.kms.revoke_grant(w.root, key["arn"], grant["grant_id"])
    w.kms.revoke_grant(w.root, key["arn"], other["grant_id"])
    assert w.kms.list_grants(w.root, key["arn"]).items == []
