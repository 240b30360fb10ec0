"""A vault's storage URL: its path under the region's location, before an S3 location's
?options (appended after them, every vault of the region shared one prefix and the
second CreateBackupVault failed as AlreadyExists)."""

from __future__ import annotations

import dataclasses
import re

from snowvault.control.services import vaults
from snowvault.control.services.base import Caller, Deps, Storage


def _url(deps: Deps, caller: Caller, location: str) -> str:
    there = dataclasses.replace(deps, storage=Storage({caller.region: location}))
    return vaults._storage_url(there, caller, "main")


def test_the_vault_path_goes_before_the_query(deps: Deps, caller: Caller) -> None:
    acct = caller.account_id
    url = _url(deps, caller, "s3://bucket/base/?endpoint_url=http://127.0.0.1:9000")
    assert re.fullmatch(rf"s3://bucket/base/{acct}/main-[0-9a-f]{{8}}\?endpoint_url=.*", url)
    other = _url(deps, caller, "s3://bucket/base/?endpoint_url=http://127.0.0.1:9000")
    assert url != other
    assert re.fullmatch(
        rf"s3://bucket/{acct}/main-[0-9a-f]{{8}}", _url(deps, caller, "s3://bucket")
    )
    assert re.fullmatch(rf"/srv/v/{acct}/main-[0-9a-f]{{8}}", _url(deps, caller, "/srv/v/"))
