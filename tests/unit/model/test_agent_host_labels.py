"""A caller's WorkerLabel (control/model/agent_hosts.scoped): ``agent:HOST`` is scoped to
the caller's account, another account's form is refused, and so are labels no worker
would ever claim (empty, the agent prefix in other letters), which left their jobs in
CREATED until the start window ended (helper Q's probe)."""

from __future__ import annotations

import pytest

from snowvault.control.model import agent_hosts
from snowvault.core.errors import InvalidInput

ACCOUNT = "111122223333"


def test_an_agent_label_is_scoped_to_the_callers_account() -> None:
    assert agent_hosts.scoped("agent:web-1", ACCOUNT) == f"agent:{ACCOUNT}:web-1"
    assert agent_hosts.scoped(None, ACCOUNT) is None
    assert agent_hosts.scoped("gpu", ACCOUNT) == "gpu"  # a server worker's label


@pytest.mark.parametrize(
    "label", ["", "  ", "AGENT:web-1", "Agent:web-1", "agent:999999999999:web-1", "agent:"]
)
def test_labels_no_worker_would_claim_are_refused(label: str) -> None:
    with pytest.raises(InvalidInput):
        agent_hosts.scoped(label, ACCOUNT)
