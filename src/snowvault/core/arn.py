"""Amazon Resource Names as AWS writes them.

>>> a = Arn.parse("arn:aws:backup:us-east-1:123456789012:backup-vault:main")
>>> (a.service, a.region, a.account, a.resource)
('backup', 'us-east-1', '123456789012', 'backup-vault:main')
>>> str(a)
'arn:aws:backup:us-east-1:123456789012:backup-vault:main'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from snowvault.core.errors import InvalidInput

ACCOUNT_RE = re.compile(r"^\d{12}$")


@dataclass(frozen=True)
class Arn:
    partition: str
    service: str
    region: str
    account: str
    resource: str

    @classmethod
    def parse(cls, text: str) -> Arn:
        parts = text.split(":", 5)
        if len(parts) != 6 or parts[0] != "arn" or not parts[1] or not parts[2]:
            raise InvalidInput(detail=f"not an ARN: {text!r}")
        return cls(parts[1], parts[2], parts[3], parts[4], parts[5])

    def __str__(self) -> str:
        return ":".join(
            ("arn", self.partition, self.service, self.region, self.account, self.resource)
        )

    @property
    def resource_type(self) -> str:
        """The part of the resource before the first ``:`` or ``/``."""
        return re.split(r"[:/]", self.resource, maxsplit=1)[0]

    @property
    def resource_id(self) -> str:
        """The part of the resource after the first ``:`` or ``/``."""
        pieces = re.split(r"[:/]", self.resource, maxsplit=1)
        return pieces[1] if len(pieces) > 1 else ""


def build(service: str, region: str, account: str, resource: str, partition: str = "aws") -> str:
    return str(Arn(partition, service, region, account, resource))
