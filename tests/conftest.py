"""Fixtures for server tests: a fresh app per test on a real loopback port.

pytest-tornado serves the ``app`` fixture on ``http_port`` for every test that
asks for ``http_server``, ``http_client`` or ``base_url`` (with the server
options of ``python -m chatzilla``); ``clients`` opens
SockJS clients against it and closes them all in teardown.

Change a setting for one test with
``@pytest.mark.parametrize("settings", [Settings(..., history_limit=3)])``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from collections.abc import Iterator

import pytest
from tornado.httpclient import AsyncHTTPClient

from chatzilla.app import make_app, make_server, open_backend
from chatzilla.settings import Settings

from .postgres import ReusedDatabase, fresh_database
from .sockjs_client import KINDS, TIMEOUT, TRANSPORTS

#: The modules whose tests take seconds each (server processes, restarts,
#: grace periods, Chromium waiting out an outage), slowest first. They run
#: first, so that parallel workers (pytest-xdist) do not wait at the end for
#: one that drew a slow module last; the order is only about speed.
SLOW_FIRST = (
    "test_platform.py",
    "test_fuzz.py",
    "test_retention.py",
    "test_redis.py",
    "test_durability.py",
    "test_cluster.py",
    "test_redis_hostile.py",
    "test_postgres.py",
    "test_presence_grace.py",
    "browser/test_accessibility.py",
    "browser/test_catch_up.py",
    "browser/test_offline.py",
    "browser/test_reconnect.py",
    "browser/test_signin.py",
    "browser/test_presence.py",
    "browser/test_composer.py",
    "browser/test_attention.py",
    "browser/test_sending.py",
    "browser/test_typing.py",
    "browser/test_scrollback.py",
)


def pytest_collection_modifyitems(config, items):
    """Run the modules of SLOW_FIRST first, in that order; the rest after,
    as collected."""
    here = os.path.dirname(__file__)

    def rank(item) -> int:
        module = os.path.relpath(str(item.path), here)
        return SLOW_FIRST.index(module) if module in SLOW_FIRST else len(SLOW_FIRST)

    items.sort(key=rank)


def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto``: two workers a core. The tests mostly wait (on sockets,
    timers, other processes), so a core has room for two."""
    return 2 * (os.cpu_count() or 1)


@pytest.fixture(scope="session", autouse=True)
def _first_loop():
    """The asyncio loop pytest-tornado's first IOLoop finds current.

    Without one, asyncio makes one there and nobody closes it; a later
    ``asyncio.run()`` drops it, and its garbage collection (an unclosed-loop
    ResourceWarning, an error here) fails whichever test runs then. This one
    is closed at the end of the session.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield
    asyncio.set_event_loop(None)
    loop.close()


def make_settings(**overrides) -> Settings:
    """Settings for a test server on loopback, with ``overrides``.

    ``disconnect_delay`` is 1 second rather than 5: an xhr-polling client
    closed between two polls has no request to abort, so the server only
    lets it go when its session expires (up to disconnect_delay plus
    sockjs-tornado's 1-second expiry sweep), and tests wait 5 seconds at most.
    ``presence_grace`` is 0: a closed connection's person leaves at once,
    unless a test is about the grace period. ``storage`` is memory: a SQLite
    file written with ``synchronous=FULL`` costs every message a disk sync,
    which tripled the protocol tests' time; the tests where durability is the
    point (test_durability, test_ordering, test_sqlite_backend, the fuzz
    test) ask for ``storage="sqlite"``. ``auth`` is "open" (protocol 1,
    anyone joins as any address): the tests of sign-in ask for "link".
    """
    return Settings(
        **{
            "host": "127.0.0.1",
            "port": 0,
            "disconnect_delay": 1.0,
            "presence_grace": 0.0,
            "storage": "memory",
            "auth": "open",
            **overrides,
        }
    )


@pytest.fixture
def settings() -> Settings:
    """Override in a test module (or parametrize) to change one setting.

    A SQLite database file always goes to the test's own temporary folder.
    """
    return make_settings()


@pytest.fixture(scope="session")
def _reused_database() -> Iterator[ReusedDatabase]:
    reused = ReusedDatabase()
    yield reused
    reused.drop()


@pytest.fixture
def database_url(_reused_database) -> str:
    """The URL of a migrated Postgres database with nothing in it: this
    process's, emptied for the test (tests/postgres.py)."""
    return _reused_database.url()


@pytest.fixture
def empty_database_url() -> Iterator[str]:
    """The URL of a new Postgres database, not migrated, dropped after the
    test: for the tests of migrations, and of a schema they change."""
    with fresh_database() as url:
        yield url


@pytest.fixture(params=["memory", "postgres"])
def stores(request) -> Settings:
    """Test settings (:func:`make_settings`) once with the tests' usual
    memory storage and once on Postgres (a database of the test's own):
    a module's ``settings`` fixture asks for it to hold its rules on both."""
    if request.param == "postgres":
        return make_settings(database_url=request.getfixturevalue("database_url"))
    return make_settings()


@pytest.fixture
def app(request, io_loop, settings):
    # Only a SQLite store reads the file: the temporary folder (a directory
    # made and numbered for the test) only for those.
    if settings.storage != "memory" and settings.db == Settings.db:
        tmp_path = request.getfixturevalue("tmp_path")
        settings = dataclasses.replace(settings, db=str(tmp_path / "chatzilla.db"))
    backend = io_loop.run_sync(lambda: open_backend(settings))
    application = make_app(settings, backend=backend, io_loop=io_loop)
    yield application
    io_loop.run_sync(application.shutdown)


@pytest.fixture
def http_server(request, io_loop, _unused_port, app, settings):
    """pytest-tornado's server, with the options ``python -m chatzilla`` uses."""
    server = make_server(app, settings)
    server.add_socket(_unused_port[0])
    yield server
    server.stop()
    io_loop.run_sync(server.close_all_connections, timeout=request.config.option.async_test_timeout)


@pytest.fixture
def base_url(http_server, http_port):
    """The server's http://127.0.0.1:PORT (starts the server)."""
    return f"http://127.0.0.1:{http_port}"


@pytest.fixture(params=sorted(TRANSPORTS))
def transport(request) -> str:
    """Run a test once per SockJS transport the test clients speak."""
    return request.param


@pytest.fixture
def connect(base_url, io_loop):
    """``await connect(kind)`` opens a client of that kind (default websocket);
    every client is closed in teardown. Not parametrized."""
    opened = []

    async def open_client(kind: str = "websocket", **kwargs):
        client = KINDS[kind](base_url, **kwargs)
        opened.append(client)
        return await client.connect()

    yield open_client
    for client in opened:
        io_loop.run_sync(client.close)


@pytest.fixture
def clients(connect, transport):
    """``await clients()`` opens a client on the test's transport (or ``kind=``)."""

    async def open_client(kind: str | None = None, **kwargs):
        return await connect(kind or transport, **kwargs)

    return open_client


@pytest.fixture
def fetch(base_url):
    """``await fetch(path, **kw)``: an HTTP response from the test server
    (no exception for error codes)."""

    async def get(path: str, **kwargs):
        return await AsyncHTTPClient().fetch(base_url + path, raise_error=False, **kwargs)

    return get


@pytest.fixture
def health(fetch):
    """``await health()``: the /healthz document; ``await health(connections=2,
    participants=1)`` waits until the figures are those (the server notices a
    closed connection asynchronously) and returns the document."""

    async def get(**expected):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        while True:
            response = await fetch("/healthz")
            assert response.code == 200, response
            document = json.loads(response.body)
            if all(document[key] == value for key, value in expected.items()):
                return document
            assert loop.time() < deadline, f"/healthz stayed {document}, expected {expected}"
            await asyncio.sleep(0.02)

    return get
