"""Damage a repository on disk, then prove ``check`` names what broke and whom it hurts.

One repository (small chunker and packs, so files span many packs) holds three recovery
points: ``rp1`` of a tree, ``rp2`` of the same tree changed a little, ``rp3`` of another
tree. Each test damages its own copy — a flipped byte, a truncated or deleted pack, a
deleted index segment, a damaged manifest, config or key slot — and asserts through the
real CLI and the Python API that the damage is found, named (object and affected
recovery point ids), that restoring a damaged file fails naming the file, and that
recovery points that do not need the damaged object still restore byte for byte.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from helpers.engine_cli import (
    PASSWORD,
    Cli,
    assert_clean_error,
    json_lines,
    make_small_repo,
    make_writable,
    read_tree,
    sample_files,
    write_tree,
)
from snowvault.engine import check, errors, packs, prune, restorer, tree
from snowvault.engine.backends.local import LocalBackend
from snowvault.engine.crypto import KdfParams
from snowvault.engine.repository import Repository
from snowvault.testing import FakeClock

OpenRepo = Callable[[str], Repository]


@dataclass(frozen=True)
class Built:
    repo: Path
    rps: dict[str, str]  # "rp1" -> id
    content: dict[str, dict[str, bytes]]  # id -> files


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, module_cli: Cli) -> Built:
    base = tmp_path_factory.mktemp("corruption")
    repo = make_small_repo(base / "repo")
    files1 = sample_files(1)
    write_tree(base / "data", files1)
    rp1 = module_cli.backup(repo, str(base / "data"))["id"]
    files2 = dict(files1)
    files2["big/b1.bin"] = files1["big/b1.bin"][:5000] + b"changed" + files1["big/b1.bin"][5000:]
    files2["new/only2.bin"] = bytes(range(256)) * 120
    write_tree(base / "data", files2)
    rp2 = module_cli.backup(repo, str(base / "data"))["id"]
    files3 = sample_files(3)
    write_tree(base / "other", files3)
    rp3 = module_cli.backup(repo, str(base / "other"))["id"]
    return Built(
        Path(repo),
        {"rp1": rp1, "rp2": rp2, "rp3": rp3},
        {rp1: files1, rp2: files2, rp3: files3},
    )


@pytest.fixture
def repo_copy(built: Built, tmp_path: Path) -> str:
    dest = tmp_path / "repo"
    shutil.copytree(built.repo, dest)
    make_writable(dest)
    return str(dest)


def blob_users(repo: Repository) -> dict[bytes, set[tuple[str, str]]]:
    """Every blob -> the (recovery point id, path) pairs that need it (trees: dir paths)."""
    users: dict[bytes, set[tuple[str, str]]] = {}

    def walk(rp_id: str, tree_hex: str, where: str) -> None:
        tree_id = bytes.fromhex(tree_hex)
        users.setdefault(tree_id, set()).add((rp_id, where))
        for node in tree.decode_tree(repo.get_blob(tree_id)):
            path = f"{where}/{node.name.decode()}".lstrip("/")
            for chunk, _ in node.content:
                if chunk is not None:
                    users.setdefault(bytes.fromhex(chunk), set()).add((rp_id, path))
            if node.subtree is not None:
                walk(rp_id, node.subtree, path)

    for rp_id in repo.list_manifests():
        walk(rp_id, str(repo.load_manifest(rp_id)["tree"]), "")
    return users


def rps_of(users: dict[bytes, set[tuple[str, str]]], blob_ids: list[bytes]) -> set[str]:
    return {rp for b in blob_ids for rp, _ in users.get(b, set())}


def pack_of(repo: Repository, blob_id: bytes) -> str:
    return repo.blob_location(blob_id)[0]


def packs_by_kind(repo: Repository, kind: int) -> dict[str, list[bytes]]:
    """pack name -> blob ids, for the packs holding blobs of ``kind``."""
    found: dict[str, list[bytes]] = {}
    for blob_id, loc in repo.master_index.items():
        if loc.kind == kind:
            found.setdefault(packs.pack_name(loc.pack_id), []).append(blob_id)
    return found


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def check_json(cli: Cli, repo: str, *extra: str, expect: int) -> dict[str, Any]:
    doc = cli.json("repo", "check", "--repo", repo, *extra, expect=expect)
    assert isinstance(doc, dict)
    return doc


def problem_rps(doc: dict[str, Any], obj: str) -> set[str]:
    """The recovery points named by the problems about ``obj`` (which must exist)."""
    hits = [p for p in doc["problems"] if p["object"] == obj]
    assert hits, f"no problem names {obj}: {doc['problems']}"
    return {rp for p in hits for rp in p["recovery_points"]}


def restore_ok(repo: Repository, rp_id: str, expected: dict[str, bytes], target: Path) -> None:
    """``rp_id`` restores byte for byte (Python API: CLI restores are covered elsewhere)."""
    result = restorer.restore(repo, rp_id, target)
    assert result.errors == []
    assert read_tree(target) == expected


# ---------------------------------------------------------------- data damage


def test_flipped_byte_in_a_data_pack_is_found_by_read_data_and_named(
    built: Built, repo_copy: str, cli: Cli, open_repo: OpenRepo, tmp_path: Path
) -> None:
    rp1, rp2, rp3 = built.rps["rp1"], built.rps["rp2"], built.rps["rp3"]
    repo = open_repo(repo_copy)
    users = blob_users(repo)
    # a chunk of big/b2.bin: unchanged between rp1 and rp2, absent from rp3
    victim = next(
        b for b, u in sorted(users.items()) if u == {(rp1, "big/b2.bin"), (rp2, "big/b2.bin")}
    )
    name, offset, length = repo.blob_location(victim)
    flip_byte(Path(repo_copy) / name, offset + length // 2)

    # structure alone reads headers and trees, not data: it sees nothing wrong
    plain = check.check(repo)
    assert plain.ok and plain.problems == [] and plain.packs_read == 0

    deep = check_json(cli, repo_copy, "--read-data", expect=8)
    assert deep["ok"] is False
    assert problem_rps(deep, name) == {rp1, rp2}
    assert any(victim.hex() in p["detail"] for p in deep["problems"] if p["object"] == name)

    api = check.check(repo, read_data=True)
    assert not api.ok
    (blob_problem,) = [p for p in api.problems if p.object == name and p.recovery_points]
    assert set(blob_problem.recovery_points) == {rp1, rp2}
    assert str(blob_problem).startswith(name) and rp1[:12] in str(blob_problem)

    # restoring rp1 fails on that one file, naming it; every other file comes back
    failed = cli.run(
        "repo", "restore", "--repo", repo_copy, rp1, str(tmp_path / "t1"), "--json", expect=3
    )
    summary = json.loads(failed.stdout.splitlines()[-1])
    assert [e["path"] for e in summary["errors"]] == ["big/b2.bin"]
    restored = read_tree(tmp_path / "t1")
    expected = dict(built.content[rp1])
    del expected["big/b2.bin"]
    assert restored == expected

    with pytest.raises(errors.IntegrityError, match=name):
        repo.get_blob(victim)
    result = restorer.restore(repo, rp2, tmp_path / "t2", include=["big/b2.bin"])
    assert [e.path for e in result.errors] == ["big/b2.bin"]
    assert not (tmp_path / "t2" / "big" / "b2.bin").exists()

    restore_ok(repo, rp3, built.content[rp3], tmp_path / "t3")


def test_flipped_byte_in_a_tree_pack_is_found_by_plain_check(
    built: Built, repo_copy: str, cli: Cli, open_repo: OpenRepo, tmp_path: Path
) -> None:
    rp1, rp3 = built.rps["rp1"], built.rps["rp3"]
    repo = open_repo(repo_copy)
    users = blob_users(repo)
    root3 = bytes.fromhex(str(repo.load_manifest(rp3)["tree"]))
    assert {rp for rp, _ in users[root3]} == {rp3}
    name, offset, length = repo.blob_location(root3)
    flip_byte(Path(repo_copy) / name, offset + length // 2)
    # the other trees stored in that pack are damaged too if they share it: expected set
    tree_pack = packs_by_kind(repo, packs.KIND_TREE)[name]
    assert root3 in tree_pack

    doc = check_json(cli, repo_copy, expect=8)
    assert rp3 in problem_rps(doc, name)
    failed = cli.run("repo", "restore", "--repo", repo_copy, rp3, str(tmp_path / "t3"), expect=None)
    line = assert_clean_error(failed, name)
    assert "integrity check failed" in line
    # rp1's root tree lives elsewhere or is untouched: rp1 restores whenever check spares it
    if rp1 not in problem_rps(doc, name):
        restore_ok(repo, rp1, built.content[rp1], tmp_path / "t1")


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_truncated_or_missing_pack_is_named_by_structure_check(
    damage: str, built: Built, repo_copy: str, cli: Cli, open_repo: OpenRepo, tmp_path: Path
) -> None:
    rp3 = built.rps["rp3"]
    repo = open_repo(repo_copy)
    users = blob_users(repo)
    data_packs = packs_by_kind(repo, packs.KIND_DATA)
    # a pack that rp3 does not need, so rp3 must still restore afterwards
    name, blob_ids = next(
        (n, ids) for n, ids in sorted(data_packs.items()) if rp3 not in rps_of(users, ids)
    )
    expected_rps = rps_of(users, blob_ids)
    assert expected_rps
    path = Path(repo_copy) / name
    cut = path.stat().st_size // 2 if damage == "truncate" else 0
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:cut])
    else:
        path.unlink()
    # restore reads what still authenticates: only blobs past the cut are lost
    lost = [b for b in blob_ids if sum(repo.blob_location(b)[1:]) > cut]

    doc = check_json(cli, repo_copy, expect=8)
    assert problem_rps(doc, name) == expected_rps
    detail = " ".join(p["detail"] for p in doc["problems"] if p["object"] == name)
    assert ("missing" in detail) if damage == "delete" else ("header" in detail)

    api = check.check(repo)
    assert {p.object for p in api.problems} == {name}

    victim_rp = sorted(rps_of(users, lost))[0]
    damaged_files = {rel for b in lost for rp, rel in users.get(b, ()) if rp == victim_rp}
    assert damaged_files
    if damage == "delete":  # through the CLI: exit 3, each lost file named
        failed = cli.run(
            "repo", "restore", "--repo", repo_copy, victim_rp, str(tmp_path / "t"), expect=3
        )
        assert "Traceback" not in failed.stderr
        for rel in damaged_files:
            assert rel in failed.stderr
    else:
        result = restorer.restore(repo, victim_rp, tmp_path / "t")
        assert {e.path for e in result.errors} == damaged_files
    survivors = {k: v for k, v in built.content[victim_rp].items() if k not in damaged_files}
    assert read_tree(tmp_path / "t") == survivors
    restore_ok(repo, rp3, built.content[rp3], tmp_path / "t3")


def test_deleted_index_segment_is_named_by_check_and_repaired_by_prune(
    built: Built,
    repo_copy: str,
    cli: Cli,
    open_repo: OpenRepo,
    tmp_path: Path,
    clock: FakeClock,
) -> None:
    rp3 = built.rps["rp3"]
    repo = open_repo(repo_copy)
    users = blob_users(repo)
    segments = {n: repo.read_segment(n) for n in repo.index_segments()}
    seg_name, seg = next(
        (n, s)
        for n, s in sorted(segments.items())
        if all(e.kind == packs.KIND_DATA for es in s.packs.values() for e in es)
        and rp3 not in rps_of(users, [e.blob_id for es in s.packs.values() for e in es])
    )
    blob_ids = [e.blob_id for es in seg.packs.values() for e in es]
    expected_rps = rps_of(users, blob_ids)
    (Path(repo_copy) / seg_name).unlink()

    doc = check_json(cli, repo_copy, expect=8)
    for pack_id in seg.packs:
        assert any(
            packs.pack_name(pack_id) in w and "not in the index" in w for w in doc["warnings"]
        )
    named = {p["object"] for p in doc["problems"]}
    assert named == {f"blob {b.hex()}" for b in blob_ids}
    pack_names = {packs.pack_name(p) for p in seg.packs}
    for p in doc["problems"]:
        assert "is not indexed" in p["detail"], p
        assert any(n in p["detail"] for n in pack_names), p
    assert {rp for p in doc["problems"] for rp in p["recovery_points"]} == expected_rps

    restore_ok(repo, rp3, built.content[rp3], tmp_path / "t3")

    # the packs are whole: prune reads their headers and indexes them again
    prune.prune(repo, clock)
    repaired = check.check(repo, read_data=True)
    assert repaired.ok and repaired.warnings == [], repaired
    for rp_id in sorted(expected_rps):
        restore_ok(repo, rp_id, built.content[rp_id], tmp_path / f"again-{rp_id[:8]}")


# ---------------------------------------------------------------- metadata damage


def test_damaged_manifest_is_named_and_the_others_still_work(
    built: Built, repo_copy: str, cli: Cli, open_repo: OpenRepo, tmp_path: Path
) -> None:
    rp1, rp2, rp3 = built.rps["rp1"], built.rps["rp2"], built.rps["rp3"]
    repo = open_repo(repo_copy)
    flip_byte(Path(repo_copy) / "recovery-points" / rp2, 20)

    doc = check_json(cli, repo_copy, expect=8)
    assert [p["object"] for p in doc["problems"]] == [f"recovery-points/{rp2}"]
    assert doc["recovery_points"] == 3

    failed = cli.run("repo", "restore", "--repo", repo_copy, rp2, str(tmp_path / "t2"), expect=None)
    assert_clean_error(failed, f"recovery-points/{rp2}")

    # listing and new backups go on past it, with a warning naming it ...
    listed = cli.run("repo", "recovery-points", "--repo", repo_copy, "--json")
    lines = json_lines(listed.stdout)
    assert {r["id"] for r in lines[-1]} == {rp1, rp3}
    assert any(rp2[:12] in d.get("message", "") for d in lines[:-1])
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_bytes(b"still backing up")
    assert cli.backup(repo_copy, str(tmp_path / "src"))["files_new"] == 1
    # ... but prune refuses: it cannot know what the damaged one still needs
    refused = cli.run("repo", "prune", "--repo", repo_copy, expect=8)
    assert_clean_error(refused, f"recovery-points/{rp2}")
    restore_ok(repo, rp1, built.content[rp1], tmp_path / "t1")
    restore_ok(repo, rp3, built.content[rp3], tmp_path / "t3")


CONFIG_DAMAGE: dict[str, Callable[[dict[str, Any]], Any]] = {
    "garbage": lambda d: b"\x00\xffnot json at all",
    "truncated": lambda d: json.dumps(d).encode()[:40],
    "sealed-flipped": lambda d: {**d, "sealed": _flip_b64(d["sealed"])},
    "sealed-not-base64": lambda d: {**d, "sealed": d["sealed"][:-3] + "!"},
    "other-id": lambda d: {**d, "id": "ab" * 32},
    "no-id": lambda d: {k: v for k, v in d.items() if k != "id"},
    "future-version": lambda d: {**d, "version": 99},
    "not-an-object": lambda d: [d],
}


def _flip_b64(text: str) -> str:
    mid = len(text) // 2
    return text[:mid] + ("A" if text[mid] != "A" else "B") + text[mid + 1 :]


def _rewrite_json(path: Path, damage: Callable[[dict[str, Any]], Any]) -> None:
    new = damage(json.loads(path.read_bytes()))
    path.write_bytes(new if isinstance(new, bytes) else json.dumps(new).encode())


@pytest.mark.parametrize("damage", sorted(CONFIG_DAMAGE))
def test_damaged_config_is_an_engine_error(damage: str, repo_copy: str) -> None:
    _rewrite_json(Path(repo_copy) / "config", CONFIG_DAMAGE[damage])
    with pytest.raises(errors.EngineError) as caught:
        Repository.open(LocalBackend(repo_copy), password=PASSWORD)
    assert isinstance(caught.value, errors.IntegrityError | errors.WrongKey)
    if isinstance(caught.value, errors.IntegrityError):
        assert caught.value.fields["name"] == "config"


KEY_DAMAGE: dict[str, Callable[[dict[str, Any]], Any]] = {
    "garbage": lambda d: b"\x00\xff",
    "wrapped-flipped": lambda d: {**d, "wrapped": _flip_b64(d["wrapped"])},
    "wrapped-not-base64": lambda d: {**d, "wrapped": "@@@"},
    "salt-not-base64": lambda d: {**d, "kdf": {**d["kdf"], "salt": "x"}},
    "kdf-cost-invalid": lambda d: {**d, "kdf": {**d["kdf"], "n": 3}},
    "kdf-missing": lambda d: {k: v for k, v in d.items() if k != "kdf"},
}


@pytest.mark.parametrize("damage", sorted(KEY_DAMAGE))
def test_damaged_key_slot_is_an_engine_error(damage: str, repo_copy: str) -> None:
    (slot,) = (Path(repo_copy) / "keys").iterdir()
    _rewrite_json(slot, KEY_DAMAGE[damage])
    with pytest.raises(errors.EngineError) as caught:
        Repository.open(LocalBackend(repo_copy), password=PASSWORD)
    if damage.startswith("wrapped-"):  # fails authentication: as if the key were wrong
        assert isinstance(caught.value, errors.WrongKey)
    else:
        assert isinstance(caught.value, errors.IntegrityError)
        assert caught.value.fields["name"] == f"keys/{slot.name}"


def test_a_damaged_slot_does_not_hide_a_good_one(repo_copy: str, open_repo: OpenRepo) -> None:
    repo = open_repo(repo_copy)
    second = repo.add_key_slot(password="second", kdf=KdfParams.for_tests())
    (first,) = [p for p in (Path(repo_copy) / "keys").iterdir() if p.name != second]
    first.chmod(0o644)
    first.write_bytes(b"garbage")
    assert Repository.open(LocalBackend(repo_copy), password="second").config.id == repo.config.id
    with pytest.raises(errors.IntegrityError, match="key slot is damaged"):
        Repository.open(LocalBackend(repo_copy), password="wrong")


@pytest.mark.parametrize(
    ("target", "damage", "needle"),
    [
        ("config", "sealed-not-base64", "config"),
        ("config", "future-version", "version 99"),
        ("keys", "kdf-cost-invalid", "key slot is damaged"),
        ("keys", "wrapped-flipped", "wrong passphrase"),
    ],
)
def test_damaged_config_or_key_through_the_cli_is_one_line(
    target: str, damage: str, needle: str, repo_copy: str, cli: Cli
) -> None:
    if target == "config":
        _rewrite_json(Path(repo_copy) / "config", CONFIG_DAMAGE[damage])
    else:
        (slot,) = (Path(repo_copy) / "keys").iterdir()
        _rewrite_json(slot, KEY_DAMAGE[damage])
    failed = cli.run("repo", "recovery-points", "--repo", repo_copy, expect=None)
    assert_clean_error(failed, needle)
    assert failed.returncode in (6, 8)


def test_no_key_slot_at_all(repo_copy: str, cli: Cli) -> None:
    for slot in (Path(repo_copy) / "keys").iterdir():
        slot.unlink()
    failed = cli.run("repo", "check", "--repo", repo_copy, expect=8)
    assert_clean_error(failed, "no key slot")
