"""docs/api-coverage.md: every operation of each served model and its state.

An operation is *full* (served as the model describes), *partial* (served, with what is
missing written in :data:`PARTIAL`) or *not implemented*. Pure core, thin command line:

    >>> text = render({"kms": {"Encrypt", "CreateGrant"}})
    >>> "- [x] Encrypt" in text and "- [ ] Decrypt" in text
    True
    >>> "- [x] CreateGrant (partial:" in text
    True

    python -m snowvault.interfaces.api.coverage \\
        --handlers snowvault.interfaces.api.handlers:implemented \\
        --handlers snowvault=snowvault.interfaces.api.extension:ACTIONS \\
        --out docs/api-coverage.md

``--handlers MODULE:ATTR`` names a sequence of ServiceEndpoint objects, or a mapping of
model name to handler table, or a callable returning either; ``MODEL=MODULE:ATTR`` names
one model's handler table. The ``snowvault`` model is the extension API's, shipped in the
package (``snowvault/data``); the others are botocore's.

Depends on the api model only; must not depend on services or other interfaces.
"""

from __future__ import annotations

import argparse
import functools
import importlib
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from botocore import loaders

import snowvault
from snowvault.interfaces.api import model

_GRANT_TOKENS = "GrantTokens accepted and not needed (a grant takes effect at once)"
_DRY_RUN = "DryRun ignored (the operation runs)"

PARTIAL: Mapping[str, Mapping[str, str]] = {
    "backup": {
        "DescribeBackupVault": "BackupVaultAccountId ignored (the caller's account)",
        "DescribeRecoveryPoint": "BackupVaultAccountId ignored (the caller's account)",
        "GetRecoveryPointRestoreMetadata": "BackupVaultAccountId ignored",
        "ListBackupJobSummaries": "no Organizations: any AccountId counts the caller's jobs",
        "ListBackupVaults": "ByShared ignored (vaults are not shared)",
        "ListProtectedResourcesByBackupVault": "BackupVaultAccountId ignored",
        "ListRecoveryPointsByBackupVault": "BackupVaultAccountId ignored",
        "ListRecoveryPointsByResource": "ManagedByAWSBackupOnly ignored",
        "ListRestoreJobs": "ByRestoreTestingPlanArn ignored (no restore testing)",
        "StartBackupJob": "Index and LogicallyAirGappedBackupVaultArn ignored; BackupOptions "
        "stored and echoed, not acted on",
        "StartRestoreJob": "CopySourceTagsToRestoredResource ignored",
        "UpdateRegionSettings": "ResourceTypeOptInIncremental ignored",
        "StartCopyJob": "a composite (parent) point is refused: copy its members",
        "ListCopyJobSummaries": "no Organizations: any AccountId counts the caller's jobs",
        "PutBackupVaultNotifications": "SNSTopicArn must name a topic of the caller's "
        "account served by this endpoint (its SNS subset); every event name is accepted, "
        "job events and RECOVERY_POINT_MODIFIED (integrity watch) are sent",
    },
    "kms": {
        "CreateKey": "symmetric encryption keys only; MultiRegion, CustomKeyStoreId and "
        "XksKeyId ignored",
        "CreateGrant": "grants give their operations to a GranteePrincipal ARN (encryption "
        "context constraints evaluated); service principals and DryRun ignored",
        "Decrypt": f"{_GRANT_TOKENS}; Recipient and {_DRY_RUN}",
        "DescribeKey": _GRANT_TOKENS,
        "Encrypt": f"{_GRANT_TOKENS}; {_DRY_RUN}",
        "GenerateDataKey": f"{_GRANT_TOKENS}; Recipient and {_DRY_RUN}",
        "GenerateDataKeyWithoutPlaintext": f"{_GRANT_TOKENS}; {_DRY_RUN}",
        "GenerateRandom": "CustomKeyStoreId and Recipient ignored",
        "ListGrants": "GranteeServicePrincipal ignored",
        "ListKeyRotations": "IncludeKeyMaterial ignored",
        "ListKeys": "ResourceOwners ignored (the caller's keys)",
        "ListRetirableGrants": "RetiringServicePrincipal ignored",
        "PutKeyPolicy": "principals of other accounts named in a key policy get no access "
        "(keys are not used across accounts)",
        "ReEncrypt": f"{_GRANT_TOKENS}; {_DRY_RUN}",
        "RetireGrant": _DRY_RUN,
        "RevokeGrant": _DRY_RUN,
    },
    "snowvault": {},
}
"""Model name -> served operation -> what is missing (the operation is *partial*)."""

EXTENSION_MODEL = "snowvault"


@functools.cache
def load(name: str) -> model.ServiceModel:
    """``name``'s model: the extension API's from the package, the others botocore's."""
    if name != EXTENSION_MODEL:
        return model.load(name)
    loader = loaders.Loader(extra_search_paths=[snowvault.DATA_PATH])
    return model.compile_model(name, loader.load_service_model(name, "service-2"))


def render(implemented: Mapping[str, Collection[str]]) -> str:
    """Markdown for each model name in ``implemented`` (with its implemented op names)."""
    lines = [
        "# API coverage",
        "",
        "Generated from the service models (botocore's for backup and kms, the package's",
        "own for the snowvault extension API) and `PARTIAL` in",
        "src/snowvault/interfaces/api/coverage.py; do not edit.",
        "",
        "`[x]` served as the model describes; `[x] ... (partial: ...)` served, with what is",
        "missing; `[ ]` not implemented.",
        "",
    ]
    for name in sorted(implemented):
        notes = PARTIAL.get(name, {})
        lines += _service_section(load(name), frozenset(implemented[name]), notes)
    return "\n".join(lines).rstrip() + "\n"


def _service_section(
    service: model.ServiceModel, done: frozenset[str], notes: Mapping[str, str]
) -> list[str]:
    ops = sorted(service.operations)
    count = sum(1 for op in ops if op in done)
    unknown = sorted(done - set(ops))
    if unknown:
        raise ValueError(f"{service.name}: not operations of the model: {unknown}")
    notes = {op: note for op, note in notes.items() if op in done}
    partial = len(notes)
    lines = [
        f"## {service.name}",
        "",
        f"{count} of {len(ops)} operations implemented. {partial} of them are partial.",
        "",
    ]
    for op in ops:
        if op in notes:
            lines.append(f"- [x] {op} (partial: {notes[op]})")
        else:
            lines.append(f"- [{'x' if op in done else ' '}] {op}")
    return [*lines, ""]


def stale_notes(implemented: Mapping[str, Collection[str]]) -> list[str]:
    """``model.Operation`` for each :data:`PARTIAL` note whose operation is not served
    (a note left behind when an operation went, or a typo)."""
    return sorted(
        f"{name}.{op}"
        for name, notes in PARTIAL.items()
        for op in notes
        if op not in implemented.get(name, ())
    )


def implemented_from(obj: Any) -> dict[str, frozenset[str]]:
    """Model name -> implemented operations, from endpoints or a mapping of handler tables."""
    if callable(obj) and not isinstance(obj, Mapping):
        obj = obj()
    if isinstance(obj, Mapping):
        return {str(name): frozenset(table) for name, table in obj.items()}
    return {ep.model_name: frozenset(ep.handlers) for ep in obj}


def _load_attr(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise SystemExit(f"--handlers must look like MODULE:ATTR, not {spec!r}")
    return getattr(importlib.import_module(module_name), attr)


def _from_spec(spec: str) -> dict[str, frozenset[str]]:
    """``MODULE:ATTR`` (see :func:`implemented_from`) or ``MODEL=MODULE:ATTR`` (one table)."""
    name, sep, rest = spec.partition("=")
    if sep:
        return {name: frozenset(_load_attr(rest))}
    return implemented_from(_load_attr(spec))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--handlers", action="append", default=[], help="[MODEL=]MODULE:ATTR of served ops"
    )
    parser.add_argument("--service", action="append", default=[], help="model with no handlers")
    parser.add_argument("--out", type=Path, help="write here instead of stdout")
    args = parser.parse_args(argv)
    implemented: dict[str, frozenset[str]] = {}
    for spec in args.handlers:
        implemented.update(_from_spec(spec))
    for name in args.service:
        implemented.setdefault(name, frozenset())
    if not implemented:
        implemented = {"backup": frozenset(), "kms": frozenset()}
    text = render(implemented)
    if args.out is None:
        print(text, end="")
    else:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
