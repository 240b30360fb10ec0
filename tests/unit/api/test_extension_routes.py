"""The extension routes in-process: reset is 404 outside test mode, actions need SigV4."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from snowvault import app as app_mod
from snowvault.core.errors import AlreadyExists
from snowvault.interfaces.api import server
from snowvault.testing import FakeClock


@pytest.fixture
def app(tmp_path: Path, clock: FakeClock) -> Iterator[app_mod.App]:
    app_mod.initialize(tmp_path / "data", port=1, clock=clock)
    built = app_mod.build(tmp_path / "data", clock=clock)
    yield built
    built.close()


def post(app: app_mod.App, path: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=server.build_asgi(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.post(path, **kwargs)

    return asyncio.run(go())


def test_reset_is_not_served_outside_test_mode(app: app_mod.App) -> None:
    resp = post(app, "/_snowvault/reset")
    assert resp.status_code == 404
    assert resp.json()["__type"] == "ResourceNotFoundException"


def test_unsigned_extension_calls_are_refused(app: app_mod.App) -> None:
    resp = post(app, "/_snowvault/v1/ListResources", json={})
    assert resp.status_code == 403
    assert resp.headers["x-amzn-ErrorType"].split(":")[0] == resp.json()["__type"]


def test_init_refuses_an_initialised_directory(app: app_mod.App) -> None:
    with pytest.raises(AlreadyExists):
        app_mod.initialize(app.config.data_dir)
    assert (app.config.data_dir / "root.key").stat().st_mode & 0o777 == 0o600
