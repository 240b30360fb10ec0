"""Constraints AWS enforces that botocore's service models leave out, merged into them.

botocore's backup model gives ``Tags`` no size, ``TagKey`` no length and ``Resources`` no
bound; the services enforce them all the same (see each entry's source). Merging them
into the raw model before it is compiled means one validator (shapes.validate) checks
them, with AWS's "1 validation error detected" message, before any handler runs.

    >>> raw = {"shapes": {"TagValue": {"type": "string"}}}
    >>> amended("backup", raw)["shapes"]["TagValue"]
    {'type': 'string', 'max': 256}

Depends on the pure tag and selection rules for the numbers; must not depend on HTTP
frameworks or other interface modules.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from snowvault.control.model import selection as selection_rules
from snowvault.control.model import tags as tag_rules

NOT_RESERVED = r"(?!(?i:aws:))[\s\S]*"

# Shape name -> keys merged into its raw spec; "required" entries are added to the
# shape's required list.
_AMENDMENTS: Mapping[str, Mapping[str, Mapping[str, Any]]] = {
    "backup": {
        # Tag naming limits (AWS General Reference) and "Metadata tags per backup: 50".
        "Tags": {"max": tag_rules.MAX_TAGS},
        "TagKey": {"min": tag_rules.KEY_MIN, "max": tag_rules.KEY_MAX, "pattern": NOT_RESERVED},
        "TagValue": {"max": tag_rules.VALUE_MAX},
        # BackupSelection.Resources/NotResources: "The maximum number of ARNs is 500".
        "ResourceArns": {"max": selection_rules.MAX_ARNS},
        # "Tags per resource selection: 30" (AWS Backup quotas), per list here.
        "ListOfTags": {"max": selection_rules.MAX_TAG_CONDITIONS},
        "ConditionParameters": {"max": selection_rules.MAX_TAG_CONDITIONS},
        "TagKeyList": {"max": tag_rules.MAX_TAGS},
    },
    "kms": {
        # The model marks these optional only for DryRun with IGNORE_CIPHERTEXT (Decrypt,
        # ReEncrypt), which this server does not serve; the KMS API reference lists
        # GranteePrincipal and RetiringPrincipal as required.
        "DecryptRequest": {"required": ["CiphertextBlob"]},
        "ReEncryptRequest": {"required": ["CiphertextBlob"]},
        "CreateGrantRequest": {"required": ["GranteePrincipal"]},
        "ListRetirableGrantsRequest": {"required": ["RetiringPrincipal"]},
    },
}

# What a failed amended pattern means, said the way a person would (shapes.validate).
PATTERN_TEXT: Mapping[str, str] = {
    NOT_RESERVED: f"Member must not begin with the reserved prefix '{tag_rules.RESERVED_PREFIX}'",
}


def amended(service_name: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the raw botocore model ``raw`` with this module's constraints merged in."""
    out = dict(raw)
    changes = _AMENDMENTS.get(service_name, {})
    if not changes:
        return out
    shapes = {name: dict(spec) for name, spec in raw["shapes"].items()}
    for name, change in changes.items():
        if name not in shapes:  # an older or newer model without this shape
            continue
        spec = shapes[name]
        for key, value in change.items():
            if key == "required":
                spec["required"] = list(dict.fromkeys([*spec.get("required", ()), *value]))
            else:
                spec[key] = copy.deepcopy(value)
    out["shapes"] = shapes
    return out
