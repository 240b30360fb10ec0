"""An overwrite restore over what a killed attempt left: its NAME.snowvault-restore temp
files are unlinked (never followed) and created afresh, once; anything else in the
temp file's place is an error of that one file."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from snowvault.engine import archiver, restorer
from snowvault.testing import FakeRepository

NOW = datetime(2026, 3, 4, tzinfo=UTC)


def _point(tmp_path: Path) -> tuple[FakeRepository, str]:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a" * 3000)
    (src / "b.txt").write_bytes(b"b" * 10)
    (src / "c.txt").write_bytes(b"c" * 20)
    repo = FakeRepository()
    return repo, archiver.backup_paths(repo, [src], now=NOW).rp_id


def test_a_leftover_temp_file_is_replaced_and_a_leftover_link_not_followed(
    tmp_path: Path,
) -> None:
    repo, rp = _point(tmp_path)
    victim = tmp_path / "victim"
    victim.write_bytes(b"not the restore's")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_bytes(b"a" * 100)  # cut short by the kill
    (out / "a.txt.snowvault-restore").write_bytes(b"half")
    (out / "b.txt.snowvault-restore").symlink_to(victim)
    result = restorer.restore(repo, rp, out, overwrite=True)
    assert result.errors == []
    assert sorted(os.listdir(out)) == ["a.txt", "b.txt", "c.txt"]
    assert (out / "a.txt").read_bytes() == b"a" * 3000
    assert (out / "b.txt").read_bytes() == b"b" * 10
    assert not (out / "b.txt").is_symlink()
    assert victim.read_bytes() == b"not the restore's"


def test_a_directory_in_the_temp_files_place_fails_that_file_only(tmp_path: Path) -> None:
    repo, rp = _point(tmp_path)
    out = tmp_path / "out"
    (out / "a.txt.snowvault-restore").mkdir(parents=True)
    (out / "a.txt.snowvault-restore" / "keep").write_bytes(b"kept")
    result = restorer.restore(repo, rp, out, overwrite=True)
    assert [(e.path, e.error.split(":")[0]) for e in result.errors] == [("a.txt", "cannot create")]
    assert (out / "a.txt.snowvault-restore" / "keep").read_bytes() == b"kept"
    assert (out / "c.txt").read_bytes() == b"c" * 20


def test_without_overwrite_an_existing_file_is_never_unlinked(tmp_path: Path) -> None:
    """Only an overwrite restore's temp file is taken for a leftover: a plain restore
    writes NAME itself and leaves a NAME.snowvault-restore that is there alone."""
    repo, rp = _point(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt.snowvault-restore").write_bytes(b"someone's")
    result = restorer.restore(repo, rp, out)
    assert result.errors == []
    assert (out / "a.txt.snowvault-restore").read_bytes() == b"someone's"
