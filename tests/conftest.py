"""Fixtures for server tests: a fresh app per test on a real loopback port.

pytest-tornado serves the ``app`` fixture on ``http_port`` for every test that
asks for ``http_server``, ``http_client`` or ``base_url``; ``clients`` opens
SockJS clients against it and closes them all in teardown.
"""

from __future__ import annotations

import dataclasses

import pytest

from chatzilla.app import make_app
from chatzilla.settings import Settings

from .sockjs_client import TRANSPORTS


@pytest.fixture
def settings() -> Settings:
    """Override in a test module (or parametrize) to change one setting.

    The database file always goes to the test's own temporary folder.
    """
    return Settings(host="127.0.0.1", port=0)


@pytest.fixture
def app(io_loop, settings, tmp_path):
    if settings.db == Settings.db:
        settings = dataclasses.replace(settings, db=str(tmp_path / "chatzilla.db"))
    application = make_app(settings, io_loop=io_loop)
    yield application
    application.router.shutdown()
    io_loop.run_sync(application.backend.close)


@pytest.fixture
def base_url(http_server, http_port):
    """The server's http://127.0.0.1:PORT (starts the server)."""
    return f"http://127.0.0.1:{http_port}"


@pytest.fixture(params=sorted(TRANSPORTS))
def transport(request) -> str:
    """Run a test once per SockJS transport the test clients speak."""
    return request.param


@pytest.fixture
def clients(base_url, transport, io_loop):
    """``await clients()`` opens a client on the test's transport (or ``kind=``)."""
    opened = []

    async def open_client(kind: str | None = None, **kwargs):
        client = TRANSPORTS[kind or transport](base_url, **kwargs)
        opened.append(client)
        return await client.connect()

    yield open_client
    for client in opened:
        io_loop.run_sync(client.close)
