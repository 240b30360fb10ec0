"""Presigned pack uploads (docs/design/agents.md, "Direct uploads to S3"): the server
signs a PUT for the key it derives from a pack id, bound to the pack's Content-MD5 and
to If-None-Match, for 15 minutes; and it refuses pack ids that are not 64 hex digits,
sizes out of bounds and MD5s of the wrong form, so an agent never names a key."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from snowvault.control.services import agents
from snowvault.core.errors import InvalidInput
from snowvault.engine import packs
from snowvault.engine.backends import s3
from snowvault.engine.backends.memory import MemoryBackend
from snowvault.engine.backends.retry import RetryBackend
from snowvault.engine.backends.tiered import TieredBackend
from snowvault.engine.crypto import agent_blobs

PACK = "ab" * 32


def _backend() -> s3.S3Backend:
    return s3.S3Backend(
        "vaults", "v/one", endpoint_url="http://127.0.0.1:9", region="us-east-1",
        access_key_id="AKIDEXAMPLE", secret_access_key="secret",
    )  # fmt: skip


def test_a_presigned_put_names_the_derived_key_and_signs_md5_and_no_overwrite() -> None:
    md5 = agent_blobs.content_md5(b"pack bytes")
    signed = _backend().presign_put(packs.pack_name(PACK), md5, agents.PRESIGN_SECONDS)
    url = urlsplit(signed.url)
    assert url.path == f"/vaults/v/one/data/ab/{PACK}"
    query = parse_qs(url.query)
    assert query["X-Amz-Expires"] == ["900"]
    assert query["X-Amz-SignedHeaders"] == ["content-md5;host;if-none-match"]
    assert signed.headers == {"Content-MD5": md5, "If-None-Match": "*"}


def test_direct_store_sees_through_retry_and_tiers_only_to_s3() -> None:
    backend = _backend()
    assert s3.direct_store(TieredBackend(RetryBackend(backend), MemoryBackend())) is backend
    assert s3.direct_store(RetryBackend(MemoryBackend())) is None


@pytest.mark.parametrize(
    "item",
    [
        {"PackId": "../../config", "Size": 10, "ContentMD5": "A" * 22 + "=="},
        {"PackId": PACK.upper(), "Size": 10, "ContentMD5": "A" * 22 + "=="},
        {"PackId": PACK, "Size": 0, "ContentMD5": "A" * 22 + "=="},
        {"PackId": PACK, "Size": agents.MAX_PACK_BYTES + 1, "ContentMD5": "A" * 22 + "=="},
        {"PackId": PACK, "Size": True, "ContentMD5": "A" * 22 + "=="},
        {"PackId": PACK, "Size": 10, "ContentMD5": "not an md5"},
        {"PackId": PACK, "Size": 10},
    ],
)
def test_a_pack_the_server_would_not_sign_is_refused(item: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        agents.parse_packs([item])


def test_a_pack_named_twice_or_too_many_packs_are_refused() -> None:
    one = {"PackId": PACK, "Size": 10, "ContentMD5": "A" * 22 + "=="}
    assert agents.parse_packs([one])[0].pack_id == PACK
    with pytest.raises(InvalidInput):
        agents.parse_packs([one, one])
    with pytest.raises(InvalidInput):
        agents.parse_packs([one] * (agents.MAX_PACKS_PER_CALL + 1))
