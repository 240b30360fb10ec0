"""Tables written to a pipe keep every value whole (no '…'), however wide the row."""

from __future__ import annotations

import pytest

from snowvault.interfaces.cli import render

ARN = "arn:aws:backup:us-east-1:123456789012:recovery-point:" + "0123456789abcdef" * 4


def test_piped_table_keeps_long_arns_whole(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"arn": ARN, "state": "COMPLETED", "vault": "v" * 40}, {"arn": "short"}]
    render.table(
        False,
        rows,
        [
            ("ARN", lambda r: r["arn"]),
            ("STATE", lambda r: r.get("state")),
            ("VAULT", lambda r: r.get("vault")),
        ],
    )
    out = capsys.readouterr().out
    assert "…" not in out
    first = out.splitlines()[1]
    assert first.split() == [ARN, "COMPLETED", "v" * 40]


def test_narrow_piped_table_is_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    render.table(False, [{"name": "a"}], [("NAME", lambda r: r["name"])])
    assert capsys.readouterr().out.split() == ["NAME", "a"]
