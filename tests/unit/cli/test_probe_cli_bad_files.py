"""Files the CLI reads that are not what they should be (not UTF-8, JSON nested past the
recursion limit) are one line and a non-zero exit code (helper Q's probe: each was a
UnicodeDecodeError or RecursionError traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.fake_api import ENV, FakeApi
from snowvault.interfaces.cli import client, main

NOT_UTF8 = b"\xff\xfe\x00garbage"
DEEP = b"[" * 5000


def _commands(tmp: Path, bad: Path) -> dict[str, list[str]]:
    return {
        "plan create --file": ["plan", "create", "--file", str(bad)],
        "iam policy put": ["iam", "policy", "put", "alice", "p", str(bad)],
        "cost report --prices": ["cost", "report", "--data-dir", str(tmp), "--prices", str(bad)],
        "vault export-recovery-key": [
            *("vault", "export-recovery-key", "--vault", "v", "--password-file", str(bad)),
        ],
        "repo init --password-file": [
            *("repo", "init", "--repo", str(tmp / "repo"), "--password-file", str(bad)),
        ],
    }


JSON_FILES = ["plan create --file", "iam policy put", "cost report --prices"]
CASES = [(name, NOT_UTF8) for name in sorted(_commands(Path("/t"), Path("/b")))]
CASES += [(name, DEEP) for name in JSON_FILES]  # the password files are no JSON


@pytest.mark.parametrize(
    ("name", "content"), CASES, ids=[f"{n}-{'deep' if c == DEEP else 'not-utf8'}" for n, c in CASES]
)
def test_a_bad_file_is_one_line(
    name: str,
    content: bytes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(content)
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(client, "Api", lambda profile: FakeApi())
    code = main.main(_commands(tmp_path, bad)[name])
    err = capsys.readouterr().err.strip()
    assert code != 0, err
    lines = err.splitlines()
    assert "Traceback" not in err and lines, err
    assert lines[-1].startswith(("snowvault: error:", "Error: ")), err


def test_a_profile_that_is_not_utf8_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = tmp_path / ".config" / "snowvault" / "config.json"
    profile.parent.mkdir(parents=True)
    profile.write_bytes(NOT_UTF8)
    for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / ".config"))
    code = main.main(["vault", "list"])
    err = capsys.readouterr().err.strip()
    assert code == 9, err  # client configuration
    [line] = err.splitlines()
    assert str(profile) in line, line
