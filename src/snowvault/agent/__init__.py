"""The agent: runs a host's backup and restore jobs for a snowvault server (issue 13,
docs/design/agents.md).

- :mod:`.client`: the agent operations of the extension API, SigV4-signed;
- :mod:`.store`: a :class:`~snowvault.engine.archiver.BlobStore` that chunks, compresses
  and seals on this host under the job's key and uploads only blobs the vault lacks;
- :mod:`.restore`: the blob source a restore on this host reads (AgentReadBlobs);
- :mod:`.runner`: the claim loop (long poll), one job at a time, with heartbeats; every
  resource type's plugin runs here, as in the server's worker.

The agent holds its own access key and, while a job runs, the job's data key, the
vault's blob-id key and the job's resource's own secrets (a database password); never
the vault's repository secret. It judges every path by its own ``--allow-path`` list
and every database or S3 host by its own ``--allow-network`` list, whatever the server
asks.

Must not depend on the control plane's catalog, services, scheduler, the composition
root or the interfaces (an agent host has no catalog).
"""

from snowvault.agent import client, restore, runner, store

__all__ = ["client", "restore", "runner", "store"]
