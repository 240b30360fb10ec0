"""`snowvault agent run` refuses what cannot work at once, in one line (helper Q's walk):

- an --endpoint that is no http(s) URL (``garbage`` was an AttributeError traceback;
  ``ftp://...`` was retried as "cannot reach the server" for three minutes);
- a credentials file that holds no key pair (garbage was a JSONDecodeError traceback,
  `{}` a KeyError traceback);
- a --host that is not the host of the key it runs with: the agent ran as the key's host
  (its jobs, its restores written here) whatever --host said, so the wrong credentials
  file on a host served another host's jobs silently.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from helpers.sv_server import SNOWVAULT, ServerProcess


def _agent_run(
    server: ServerProcess, tmp_path: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in server.env.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [SNOWVAULT, "agent", "run", "--allow-path", str(tmp_path), "--once", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def cred_file(snowvault_server: ServerProcess, tmp_path: Path) -> Path:
    try:
        key = snowvault_server.ext("EnrollAgent", {"Host": "probe-flags"})["AccessKey"]
    except AssertionError:  # enrolled by an earlier test of the module: revoke, enrol again
        snowvault_server.ext("RevokeAgent", {"Host": "probe-flags"})
        key = snowvault_server.ext("EnrollAgent", {"Host": "probe-flags"})["AccessKey"]
    path = tmp_path / "agent.json"
    path.write_text(json.dumps({"AccessKey": key}))
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("endpoint", ["garbage", "ftp://127.0.0.1:1", "http://", "127.0.0.1:80"])
def test_an_endpoint_that_is_no_url_is_a_usage_error(
    snowvault_server: ServerProcess, tmp_path: Path, cred_file: Path, endpoint: str
) -> None:
    done = _agent_run(
        snowvault_server, tmp_path, "--endpoint", endpoint, "--host", "probe-flags",
        "--credentials-file", str(cred_file),
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "--endpoint" in line and "Traceback" not in done.stderr, done.stderr


def test_a_host_other_than_the_keys_is_refused(
    snowvault_server: ServerProcess, tmp_path: Path, cred_file: Path
) -> None:
    done = _agent_run(
        snowvault_server, tmp_path, "--endpoint", snowvault_server.endpoint,
        "--host", "probe-other", "--credentials-file", str(cred_file), "--wait-seconds", "0",
    )  # fmt: skip
    assert done.returncode == 2, (done.stdout, done.stderr)
    last = done.stderr.strip().splitlines()[-1]
    assert "probe-flags" in last and "probe-other" in last, done.stderr


@pytest.mark.parametrize(
    "content", ["garbage", "{}", "[]", '{"AccessKey": {"AccessKeyId": 1}}', '{"AccessKey": []}']
)
def test_a_credentials_file_that_is_no_key_pair_is_one_line(
    snowvault_server: ServerProcess, tmp_path: Path, content: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    bad.chmod(0o600)
    done = _agent_run(
        snowvault_server, tmp_path, "--endpoint", snowvault_server.endpoint,
        "--host", "probe-flags", "--credentials-file", str(bad),
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "--credentials-file" in line and "AccessKeyId" in line, line
