"""`snowvault server|init|run` refuse a port outside 1-65535 and a malformed
--metrics-address as a usage error before anything starts (helper Q's sweep: `server
--port 99999` and `server --metrics-address garbage` were tracebacks, an OverflowError
from bind() and a ValueError from int(), after the catalog was opened)."""

from __future__ import annotations

from pathlib import Path

import pytest

from snowvault.interfaces.cli import main

BAD = [
    ["server", "--port", "99999"],
    ["server", "--port", "0"],
    ["server", "--metrics-address", "garbage"],
    ["server", "--metrics-address", "127.0.0.1:70000"],
    ["server", "--metrics-address", "127.0.0.1:"],
    ["init", "--port", "65536"],
    ["run", "--port", "-1"],
]


@pytest.mark.parametrize("argv", BAD, ids=[" ".join(a[1:]) for a in BAD])
def test_a_bad_port_or_metrics_address_is_a_usage_error(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    code = main.main([argv[0], "--data-dir", str(data_dir), *argv[1:]])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and "Error: Invalid value for" in err, err
    assert not any(data_dir.iterdir())  # nothing ran


@pytest.mark.parametrize("address", ["off", "", "127.0.0.1:9765", "[::1]:9765", ":9765"])
def test_good_metrics_addresses_pass_the_option(address: str) -> None:
    from snowvault.interfaces.cli import server_cmd

    assert server_cmd.metrics_address_option(None, None, address) == address
