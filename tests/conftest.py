"""Fixtures shared by the in-process tests (a test file may override one, asking for it by name)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sliceplane.apiserver.app import APIServer
from sliceplane.apiserver.config import ServerConfig
from sliceplane.client.rest import RESTClient


@pytest.fixture
async def client() -> AsyncIterator[RESTClient]:
    """A client of a fresh in-process API server on the memory store."""
    srv = APIServer(ServerConfig(port=0, store_url="memory://"))
    await srv.start()
    c = RESTClient(srv.url, timeout=10)
    try:
        yield c
    finally:
        await c.close()
        await srv.stop()
