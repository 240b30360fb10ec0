"""deploy/snowvault.service: systemd accepts it, and it keeps the least-privilege
directives the docs promise (dedicated user, private state directory, read-only host)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).parents[2] / "deploy" / "snowvault.service"
SNOWVAULT = str(Path(sys.executable).with_name("snowvault"))


def directives() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_the_unit_keeps_the_least_privilege_directives() -> None:
    d = directives()
    expected = {
        "User": ["snowvault"],
        "Group": ["snowvault"],
        "StateDirectory": ["snowvault"],
        "StateDirectoryMode": ["0700"],
        "UMask": ["0077"],
        "ProtectSystem": ["strict"],
        "ProtectHome": ["read-only"],
        "ReadWritePaths": ["/var/lib/snowvault"],
        "NoNewPrivileges": ["yes"],
        "PrivateTmp": ["yes"],
        "CapabilityBoundingSet": [""],
        "AmbientCapabilities": [""],
    }
    for key, value in expected.items():
        assert d.get(key) == value, key
    (start,) = d["ExecStart"]
    assert start.split()[1:] == ["server", "--data-dir", "/var/lib/snowvault"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    text = UNIT.read_text().replace("/opt/snowvault/.venv/bin/snowvault", SNOWVAULT)
    unit = tmp_path / "snowvault.service"
    unit.write_text(text)
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    complaints = [x for x in done.stderr.splitlines() if "snowvault.service" in x]
    assert complaints == [], complaints
