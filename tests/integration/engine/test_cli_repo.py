"""``snowvault repo``: every command once through the real CLI, with --json parsed.

The round trip runs as one test (its steps depend on each other): init, three backups
(the second unchanged: it reads nothing and finds its parent itself), list, ls, diff,
restore (refusing to overwrite, then --overwrite), forget, prune, stats, check. The
error cases each assert one line on stderr, a documented exit code and no traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers.engine_cli import (
    Cli,
    assert_clean_error,
    make_small_repo,
    read_tree,
    sample_files,
    write_tree,
)


def test_round_trip_through_every_repo_command(cli: Cli, tmp_path: Path) -> None:
    repo = str(tmp_path / "repo")
    src = tmp_path / "src"
    files1 = sample_files(11)
    write_tree(src, files1)
    n = len(files1)

    created = cli.json("repo", "init", "--repo", repo)
    assert len(created["id"]) == 64
    again = cli.run("repo", "init", "--repo", repo, expect=4)
    assert_clean_error(again, "already exists")

    first = cli.backup(repo, str(src))
    assert (first["files_new"], first["parent"], first["partial"]) == (n, None, False)
    assert first["bytes_read"] == sum(len(v) for v in files1.values())
    second = cli.backup(repo, str(src))
    assert second["parent"] == first["id"]
    assert (second["files_unchanged"], second["files_new"], second["files_changed"]) == (n, 0, 0)
    assert second["bytes_read"] == 0
    assert second["bytes_added"] == 0

    files3 = dict(files1)
    files3["small/s0.txt"] = b"rewritten\n"
    files3["added/new.txt"] = b"a new file\n"
    del files3["big/b3.bin"]
    (src / "big" / "b3.bin").unlink()
    write_tree(src, {k: files3[k] for k in ("small/s0.txt", "added/new.txt")})
    third = cli.backup(repo, str(src))
    assert third["parent"] == second["id"]
    assert (third["files_new"], third["files_changed"]) == (1, 1)
    assert third["files_unchanged"] == n - 2

    listed = cli.json("repo", "recovery-points", "--repo", repo)
    assert [r["id"] for r in listed] == [first["id"], second["id"], third["id"]]
    assert {tuple(r["paths"]) for r in listed} == {(str(src),)}

    entries = cli.json("repo", "ls", "--repo", repo, "latest", "-r")
    files_in_rp = {e["path"].lstrip("/") for e in entries if e["type"] == "file"}
    assert files_in_rp == set(files3)
    sizes = {e["path"].lstrip("/"): e["size"] for e in entries if e["type"] == "file"}
    assert sizes["big/b0.bin"] == len(files3["big/b0.bin"])
    top = cli.json("repo", "ls", "--repo", repo, third["id"][:10], "/big")
    assert sorted(e["path"] for e in top) == ["/big/b0.bin", "/big/b1.bin", "/big/b2.bin"]

    changes = cli.json("repo", "diff", "--repo", repo, first["id"], "latest")
    by_path = {c["path"]: c["change"] for c in changes}
    assert by_path["/added/new.txt"] == "+"
    assert by_path["/big/b3.bin"] == "-"
    assert by_path["/small/s0.txt"] == "M"
    assert not {p for p in by_path if p.endswith((".bin", ".txt", ".dat"))} - {
        "/added/new.txt",
        "/big/b3.bin",
        "/small/s0.txt",
    }
    assert cli.json("repo", "diff", "--repo", repo, first["id"], second["id"]) == []

    target = tmp_path / "restored"
    done = cli.json("repo", "restore", "--repo", repo, "latest", str(target))
    assert (done["id"], done["files"], done["errors"]) == (third["id"], len(files3), [])
    assert read_tree(target) == files3
    assert (target / "big" / "b0.bin").stat().st_mtime == (src / "big" / "b0.bin").stat().st_mtime

    (target / "small" / "s0.txt").write_bytes(b"local edit")
    refused = cli.run("repo", "restore", "--repo", repo, "latest", str(target), expect=5)
    assert_clean_error(refused, "refusing to overwrite")
    assert (target / "small" / "s0.txt").read_bytes() == b"local edit"
    cli.json("repo", "restore", "--repo", repo, "latest", str(target), "--overwrite")
    assert read_tree(target) == files3

    forgotten = cli.json("repo", "forget", "--repo", repo, first["id"][:12])
    assert forgotten["removed"] == [first["id"]]
    pruned = cli.json("repo", "prune", "--repo", repo)
    assert pruned["recovery_points"] == 2 and pruned["dry_run"] is False
    stats = cli.json("repo", "stats", "--repo", repo)
    assert stats["recovery_points"] == 2
    assert stats["stored_bytes"] > 0 and stats["blobs"] > n
    checked = cli.json("repo", "check", "--repo", repo, "--read-data")
    assert checked["ok"] is True and checked["problems"] == []
    assert checked["recovery_points"] == 2 and checked["packs_read"] == checked["packs"]

    cli.json("repo", "restore", "--repo", repo, second["id"], str(tmp_path / "second"))
    assert read_tree(tmp_path / "second") == files1


@pytest.fixture
def repo(tmp_path: Path) -> str:
    return make_small_repo(tmp_path / "repo")


@pytest.mark.parametrize(
    ("case", "code", "needle"),
    [
        ("wrong-passphrase", 6, "wrong passphrase"),
        ("no-passphrase", 2, "no passphrase"),
        ("missing-repository", 3, "no repository at"),
        ("bad-scheme", 2, "unsupported scheme"),
        ("bad-bucket", 2, "valid bucket name"),
        ("unknown-recovery-point", 3, "recovery point not found: feedface"),
        ("missing-source", 3, "path not found"),
    ],
)
def test_errors_are_one_line_with_an_exit_code(
    case: str, code: int, needle: str, repo: str, cli: Cli, tmp_path: Path
) -> None:
    args = ["repo", "recovery-points", "--repo", repo]
    if case == "wrong-passphrase":
        cli.env["SNOWVAULT_PASSWORD"] = "not the passphrase"
    elif case == "no-passphrase":
        del cli.env["SNOWVAULT_PASSWORD"]
    elif case == "missing-repository":
        args[3] = str(tmp_path / "nothing-here")
    elif case == "bad-scheme":
        args[3] = "ftp://example/repo"
    elif case == "bad-bucket":
        args[3] = "s3://Not_A_Bucket/x"
    elif case == "unknown-recovery-point":
        args = ["repo", "restore", "--repo", repo, "feedface", str(tmp_path / "t")]
    elif case == "missing-source":
        args = ["repo", "backup", "--repo", repo, str(tmp_path / "no-such-dir")]
    failed = cli.run(*args, expect=code)
    assert_clean_error(failed, needle)
    assert not os.path.exists(tmp_path / "t")


def test_latest_resolves_per_path_and_ls_takes_the_original_path(cli: Cli, tmp_path: Path) -> None:
    repo = str(tmp_path / "repo")
    src = tmp_path / "data"
    write_tree(src, {"etc/hosts": b"hosts\n", "top.txt": b"top\n"})
    cli.json("repo", "init", "--repo", repo)
    tree = cli.backup(repo, str(src))
    dump = cli.json("repo", "backup", "--repo", repo, "--stdin", "db.sql")
    assert dump["id"] != tree["id"]

    # a bare 'latest' no longer picks the dump: two sources, so it asks which
    ambiguous = cli.run("repo", "restore", "--repo", repo, "latest", str(tmp_path / "x"), expect=2)
    assert_clean_error(ambiguous, "ambiguous", str(src), "stdin:db.sql", "--path")
    assert not (tmp_path / "x").exists()

    out = tmp_path / "out"
    done = cli.json("repo", "restore", "--repo", repo, "latest", str(out), "--path", str(src))
    assert done["id"] == tree["id"]
    assert read_tree(out) == {"etc/hosts": b"hosts\n", "top.txt": b"top\n"}
    sql = cli.json(
        "repo", "restore", "--repo", repo, "latest", str(tmp_path / "sql"), "--path", "stdin:db.sql"
    )
    assert sql["id"] == dump["id"]

    # ls: the original absolute path is the same as the path inside the recovery point
    by_original = cli.json("repo", "ls", "--repo", repo, tree["id"], str(src / "etc"))
    inside = cli.json("repo", "ls", "--repo", repo, tree["id"], "/etc")
    assert [e["path"] for e in by_original] == [e["path"] for e in inside] == ["/etc/hosts"]
    latest_ls = cli.json("repo", "ls", "--repo", repo, "latest", "--path", str(src), str(src))
    assert sorted(e["path"] for e in latest_ls) == ["/etc", "/top.txt"]
    missing = cli.run("repo", "ls", "--repo", repo, "latest", "--path", "/nope", expect=3)
    assert_clean_error(missing, "/nope")
