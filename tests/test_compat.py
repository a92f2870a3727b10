"""chatzilla.compat: each reach into sockjs-tornado's or Tornado's private
parts, on the real libraries, so a version bump that removes one fails here
by name; and a scan that no other module of chatzilla makes such a reach.
"""

from __future__ import annotations

import ast
import asyncio
import collections
import configparser
import functools
import gc
import importlib
import inspect
import pkgutil
import re
import socket
import sys
import textwrap
import warnings
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import pytest
import sockjs.tornado
import tornado
import tornado.web
from sockjs.tornado import session as sockjs_session
from sockjs.tornado import websocket as sockjs_websocket
from sockjs.tornado.transports import pollingbase
from tornado.httpclient import HTTPRequest
from tornado.iostream import IOStream
from tornado.testing import bind_unused_port
from tornado.websocket import WebSocketHandler, websocket_connect

import chatzilla
from chatzilla import compat, transports

ROOT = Path(__file__).resolve().parent.parent
LIBRARIES = ("tornado", "sockjs")


# -- the pins ------------------------------------------------------------------


def test_the_installed_libraries_are_the_pinned_versions():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    pins = dict(line.split("==") for line in config["options"]["install_requires"].split() if "==" in line)
    assert pins["tornado"] == version("tornado") == "6.6.1"
    assert pins["sockjs-tornado"] == version("sockjs-tornado") == "1.0.7"


# -- Tornado -------------------------------------------------------------------


class Probe(WebSocketHandler):
    """A plain Tornado WebSocket that hands itself to the test when open."""

    opened: asyncio.Future

    def get_compression_options(self):
        return {}  # permessage-deflate when the client asks for it

    def open(self):
        Probe.opened.set_result(self)


class HttpProbe(tornado.web.RequestHandler):
    seen: asyncio.Future

    def get(self):
        HttpProbe.seen.set_result((compat.handler_stream(self), self.request.connection.stream))
        self.finish("ok")


@pytest.fixture
def probe_url(io_loop):
    """ws://... of a server with :class:`Probe` at /ws and :class:`HttpProbe` at /http."""
    app = tornado.web.Application([("/ws", Probe), ("/http", HttpProbe)])
    sock, port = bind_unused_port()
    server = tornado.httpserver.HTTPServer(app)
    server.add_socket(sock)
    Probe.opened = asyncio.get_event_loop().create_future()
    HttpProbe.seen = asyncio.get_event_loop().create_future()
    yield f"127.0.0.1:{port}"
    server.stop()


async def _probe(probe_url: str, compression: bool = False):
    client = await websocket_connect(f"ws://{probe_url}/ws", compression_options={} if compression else None)
    return client, await asyncio.wait_for(Probe.opened, 5)


@pytest.mark.gen_test
async def test_unsent_bytes_counts_what_the_socket_has_not_taken():
    ours, theirs = socket.socketpair()
    stream = IOStream(ours)
    try:
        assert compat.unsent_bytes(stream) == 0
        assert compat.unsent_bytes(None) == 0
        stream.write(b"x" * (16 << 20))  # more than any socket buffer; nobody reads
        assert 0 < compat.unsent_bytes(stream) <= 16 << 20
    finally:
        stream.close()
        theirs.close()


@pytest.mark.gen_test
async def test_handler_stream_of_a_websocket_and_of_an_http_request(probe_url):
    client, handler = await _probe(probe_url)
    assert compat.handler_stream(handler) is handler.ws_connection.stream
    assert isinstance(compat.handler_stream(handler), IOStream)
    assert compat.handler_stream(None) is None
    client.close()
    await tornado.httpclient.AsyncHTTPClient().fetch(f"http://{probe_url}/http")
    found, actual = await HttpProbe.seen
    assert found is actual and isinstance(found, IOStream)


@pytest.mark.gen_test
async def test_websocket_stream_only_when_frames_go_as_they_are(probe_url):
    client, handler = await _probe(probe_url)
    assert compat.websocket_stream(handler) is handler.ws_connection.stream
    assert isinstance(compat.websocket_stream(handler), IOStream)
    client.close()
    Probe.opened = asyncio.get_event_loop().create_future()
    client, handler = await _probe(probe_url, compression=True)
    assert compat.websocket_stream(handler) is None  # Tornado must compress its frames
    client.close()


@pytest.mark.gen_test
async def test_forget_response_headers_empties_them_in_place(probe_url):
    client, handler = await _probe(probe_url)
    headers = handler._headers
    assert list(headers.get_all())
    compat.forget_response_headers(handler)
    assert handler._headers is headers and not list(headers.get_all())
    client.close()


@pytest.mark.gen_test
async def test_empty_headers_gives_back_their_room_and_they_still_work(probe_url):
    client, handler = await _probe(probe_url)
    headers = handler.request.headers
    assert headers["Upgrade"].lower() == "websocket"
    full = sys.getsizeof(headers._as_list) + sys.getsizeof(headers._combined_cache)
    compat.empty_headers(headers)
    assert handler.request.headers is headers and not list(headers.get_all()) and "Upgrade" not in headers
    empty = sys.getsizeof(headers._as_list) + sys.getsizeof(headers._combined_cache)
    assert empty == 2 * sys.getsizeof({}) < full
    headers.add("X-Later", "1")
    headers.add("X-Later", "2")
    assert headers["X-Later"] == "1,2" and headers.get_list("X-Later") == ["1", "2"]
    client.close()


@pytest.mark.gen_test
async def test_short_stream_queues_take_no_room_while_empty_and_keep_the_order():
    ours, theirs = socket.socketpair()
    stream = IOStream(ours)
    try:
        # What it replaces: the two deques of Tornado's IOStream.
        assert isinstance(stream._write_futures, collections.deque)
        assert isinstance(stream._write_buffer._buffers, collections.deque)
        stream.write(b"first ")  # taken by the socket at once
        compat.short_stream_queues(stream)
        queues = (stream._write_futures, stream._write_buffer._buffers)
        assert all(not q and len(q) == 0 and list(q) == [] for q in queues)
        assert all(sys.getsizeof(q) < sys.getsizeof(collections.deque()) // 4 for q in queues)
        with pytest.raises(IndexError):
            queues[0][0]
        with pytest.raises(IndexError):
            queues[0].popleft()
        # More than the socket takes, in small and large writes: both queues fill.
        big = bytes(range(256)) * 8192  # 2 MiB
        writes = [
            stream.write(b"small "),
            stream.write(big),
            stream.write(b"x" * 3000),
            stream.write(b" end"),
        ]
        assert all(queues) and len(queues[0]) >= 3  # the first may have gone at once
        expected = b"first small " + big + b"x" * 3000 + b" end"
        received = bytearray()
        theirs.setblocking(False)
        while len(received) < len(expected):
            try:
                received += theirs.recv(1 << 20)
            except BlockingIOError:
                await asyncio.sleep(0.01)
        assert bytes(received) == expected
        await asyncio.wait_for(asyncio.gather(*writes), 5)
        assert not any(queues) and compat.unsent_bytes(stream) == 0
        assert queues[0]._items is None and queues[1]._items is None  # the deques let go
    finally:
        stream.close()
        theirs.close()


class LeanProbe(compat.OneFlagDetach, Probe):
    pass


@pytest.fixture
def lean_url(io_loop):
    """ws://... of a server with Tornado's :class:`Probe` at /ws and :class:`LeanProbe` at /lean."""
    app = tornado.web.Application([("/ws", Probe), ("/lean", LeanProbe)])
    sock, port = bind_unused_port()
    server = tornado.httpserver.HTTPServer(app)
    server.add_socket(sock)
    yield f"127.0.0.1:{port}"
    server.stop()


@pytest.mark.gen_test
async def test_one_flag_detach_refuses_http_methods_as_tornado_does_with_fewer_attributes(lean_url):
    # Tornado's own detach puts the seven refusals on the instance...
    assert "setattr" in inspect.getsource(WebSocketHandler._detach_stream)
    found = {}
    for path in ("ws", "lean"):
        Probe.opened = asyncio.get_event_loop().create_future()
        client = await websocket_connect(f"ws://{lean_url}/{path}")
        handler = await asyncio.wait_for(Probe.opened, 5)
        found[path] = handler
        for name in ("write", "redirect", "set_header", "set_cookie", "set_status", "flush", "finish"):
            with pytest.raises(RuntimeError, match="not supported for Web Sockets"):
                getattr(handler, name)("x") if name != "finish" else handler.finish()
        handler.write_message("still a WebSocket")
        assert await client.read_message() == "still a WebSocket"
        client.close()
    # ...ours reads one flag: the instance keeps its few attributes.
    assert "write" in vars(found["ws"]) and "write" not in vars(found["lean"])
    assert found["lean"].websocket_detached is True
    assert len(vars(found["lean"])) == len(vars(found["ws"])) - 6
    # Before the handshake the methods are the usual ones.
    assert LeanProbe.websocket_detached is False
    for transport in (transports.WebSocketTransport, transports.RawWebSocketTransport):
        assert transport._detach_stream is compat.OneFlagDetach._detach_stream


class ShortGetProbe(compat.PlainWebSocketGet, Probe):
    pass


async def _handshake_status(port: int, path: str, headers: dict[str, str]) -> tuple[str, str]:
    """The status line and the headers of the answer to a GET of ``path`` with ``headers``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"] + [f"{k}: {v}" for k, v in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    writer.close()
    status, _, rest = head.decode().partition("\r\n")
    return status, rest


@pytest.mark.gen_test
async def test_plain_websocket_get_refuses_and_opens_as_tornados_get_does(io_loop):
    app = tornado.web.Application([("/ws", Probe), ("/short", ShortGetProbe)])
    sock, port = bind_unused_port()
    server = tornado.httpserver.HTTPServer(app)
    server.add_socket(sock)
    good = {
        "Upgrade": "websocket",
        "Connection": "keep-alive, Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
    }
    cases = {
        "no upgrade": {**good, "Upgrade": "h2c"},
        "no connection upgrade": {**good, "Connection": "keep-alive"},
        "another origin": {**good, "Origin": "http://elsewhere.example"},
        "another version": {**good, "Sec-WebSocket-Version": "8"},
        "a good one": good,
    }
    try:
        for name, headers in cases.items():
            answers = []
            for path in ("/ws", "/short"):
                Probe.opened = asyncio.get_event_loop().create_future()
                status, rest = await _handshake_status(port, path, headers)
                answers.append((status, "Sec-WebSocket-Version: 13" in rest))
            assert answers[0] == answers[1], name
        assert answers[1] == ("HTTP/1.1 101 Switching Protocols", False)
        # Every refusal Tornado's get() makes is one ours makes.
        theirs, ours = inspect.getsource(WebSocketHandler.get), inspect.getsource(compat.PlainWebSocketGet)
        for refusal in re.findall(r"set_status\((\d+)", theirs):
            assert refusal in ours
        for message in re.findall(r"log_msg = (.+)", theirs):
            assert message.strip() in ours, message
        assert "_check_cross_origin(self.check_origin)" in theirs
    finally:
        server.stop()


@pytest.mark.gen_test
async def test_our_websocket_handlers_keep_few_attributes_after_the_handshake(app, connect):
    # Few enough for CPython to share their keys among handlers (29): past
    # that each handler's dict is one of its own, about 1.6 KB.
    client = await connect("websocket")
    await client.join("a@example.com")
    connections: list = []
    app.router.hub.close_where(lambda c: connections.append(c) and False, 4000, "closes nobody")
    (connection,) = connections
    handler = connection.session.handler
    assert isinstance(handler, transports.WebSocketTransport)
    assert len(vars(handler)) <= 29, sorted(vars(handler))
    assert handler.ui is None and not list(handler.request.headers.get_all())
    assert handler.request.connection is None and handler.request.server_connection is None
    # No coroutine of Tornado's get() waits for the connection to end.
    waiting = [getattr(o, "__qualname__", None) for o in gc.get_referrers(handler)]
    assert "WebSocketHandler.get" not in waiting and "WebSocketProtocol13.accept_connection" in waiting
    stream = compat.handler_stream(handler)
    assert not stream._write_futures and not stream._write_buffer._buffers
    other = await connect("websocket")
    await other.join("b@example.com")
    assert (await client.expect("presence"))["email"] == "b@example.com"
    assert (await client.say("hello", ref="r1"))["ref"] == "r1"
    assert (await other.expect("message"))["content"] == "hello"


def test_plain_websocket_execute_replaces_sockjs_tornados_coroutine():
    # What the mixin overrides and what it calls instead, both still there...
    assert inspect.isfunction(sockjs_websocket.SockJSWebSocketHandler._execute)
    assert inspect.isfunction(WebSocketHandler._execute)
    # ...and ours is the one our transports run.
    for transport in (transports.WebSocketTransport, transports.RawWebSocketTransport):
        assert transport._execute is compat.PlainWebSocketExecute._execute


@pytest.mark.gen_test
async def test_plain_websocket_execute_opens_websockets_and_refuses_other_methods(base_url, connect):
    client = await connect("websocket")
    await client.join("a@example.com")
    response = await tornado.httpclient.AsyncHTTPClient().fetch(
        HTTPRequest(f"{base_url}/chat/000/compat/websocket", method="POST", body=b""), raise_error=False
    )
    assert response.code == 405 and response.headers["Allow"] == "GET"


# -- sockjs-tornado ------------------------------------------------------------


def test_replace_transport_handlers_gives_the_router_our_handlers(app):
    handlers = [handler for _, handler, _ in app.router.urls]
    assert handlers and all(handler in transports.HANDLERS.values() for handler in handlers)


def test_stop_router_timers_stops_both(app):
    router = app.router
    assert router._sessions_cleanup.is_running() and router.stats._callback.is_running()
    compat.stop_router_timers(router)
    assert not router._sessions_cleanup.is_running() and not router.stats._callback.is_running()


def test_polling_session_finds_a_session_by_id(app):
    session = app.router.create_session("compat-1")
    # Our xhr_send handler, not started: only its server is needed.
    handler = object.__new__(transports.XhrSendHandler)
    handler.server = app.router
    assert inspect.isfunction(pollingbase.PollingTransportBase._get_session)
    assert compat.polling_session(handler, "compat-1") is session
    assert compat.polling_session(handler, "nobody") is None


def test_detach_is_what_the_websocket_transports_have():
    for transport in (transports.WebSocketTransport, transports.RawWebSocketTransport):
        assert inspect.isfunction(transport._detach)


def test_queued_bytes_and_drop_queued_on_a_polling_session(app):
    session = app.router.create_session("compat-2")
    assert compat.queued_bytes(session) == 0
    session.send_message("hello")  # no request waits: it is queued
    assert compat.queued_bytes(session) == len(session.send_queue) > 0
    compat.drop_queued(session)
    assert compat.queued_bytes(session) == 0 and session.send_queue == ""
    assert compat.queued_bytes(object()) == 0
    compat.drop_queued(object())  # a session that queues nothing: no-op


@pytest.mark.gen_test
async def test_close_session_quietly_closes_without_writing_a_close_frame(app, connect):
    client = await connect("xhr-polling")
    session = app.router.get_session(client.base.rsplit("/", 1)[1])
    compat.close_session_quietly(session, 4000, "bye")
    assert session.state == sockjs_session.CLOSED
    assert session.get_close_reason() == (4000, "bye")
    assert session.send_queue == ""
    # The next poll is answered with the close frame.
    assert await client.recv() == {"type": "_close", "code": 4000, "reason": "bye"}


def test_streaming_handler_tells_streaming_transports_from_polling_ones():
    assert compat.streaming_handler(object.__new__(transports.XhrStreamingTransport))
    assert compat.streaming_handler(object.__new__(transports.EventSourceTransport))
    assert not compat.streaming_handler(object.__new__(transports.JSONPTransport))


class _Request:
    """What close_after_response reads: a request and its HTTP connection."""

    def __init__(self, connection) -> None:
        self.connection = connection


def test_close_after_response_sets_what_tornado_reads_at_the_end():
    from tornado.http1connection import HTTP1Connection

    connection = object.__new__(HTTP1Connection)
    connection._disconnect_on_finish = False
    compat.close_after_response(_Request(connection))
    assert connection._disconnect_on_finish is True
    assert "_disconnect_on_finish" in inspect.getsource(HTTP1Connection._finish_request)
    compat.close_after_response(_Request(None))  # no connection: nothing to do


@pytest.mark.gen_test
async def test_listen_on_and_serve_accepted_stand_in_for_tornados_accept_loop(app):
    from tornado.httpserver import HTTPServer

    server = HTTPServer(app)
    sock, port = bind_unused_port()
    stopped = []
    compat.listen_on(server, sock, lambda: stopped.append(True))
    assert server._sockets[sock.fileno()] is sock
    client = socket.create_connection(("127.0.0.1", port))
    connection, address = sock.accept()
    compat.serve_accepted(server, connection, address)
    client.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
    loop = asyncio.get_running_loop()
    answer = await loop.run_in_executor(None, client.recv, 100)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    client.close()
    server.stop()  # calls our stop, closes the socket
    assert stopped == [True]


# -- the scan ------------------------------------------------------------------


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _parse(source: Callable[[], str]) -> ast.Module:
    with warnings.catch_warnings():
        # The libraries' regular expressions have escapes that Python now
        # warns about, when it parses them (inspect.getsource does too).
        warnings.simplefilter("ignore")
        return ast.parse(source())


@functools.cache
def _library_private_names() -> frozenset[str]:
    """Every private name the libraries' own code defines or uses."""
    names = set()
    for package in (tornado, sockjs.tornado):
        for path in Path(package.__path__[0]).rglob("*.py"):
            for node in ast.walk(_parse(path.read_text)):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _private(node.name):
                    names.add(node.name)
                elif isinstance(node, ast.Attribute) and _private(node.attr):
                    names.add(node.attr)
    return frozenset(names)


@functools.cache
def _class_private_names(cls: type) -> frozenset[str]:
    """Private methods and ``self._x`` attributes of one library class."""
    names = set()
    for node in ast.walk(_parse(lambda: textwrap.dedent(inspect.getsource(cls)))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _private(node.name):
            names.add(node.name)
        elif (
            isinstance(node, ast.Attribute)
            and _private(node.attr)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
        ):
            names.add(node.attr)
    return frozenset(names)


def _from_library(cls: type) -> bool:
    return cls.__module__.split(".")[0] in LIBRARIES


def _everything_below(cls: type) -> list[type]:
    found, todo = [], [cls]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.append(sub)
            todo.append(sub)
    return found


def _names_of_library_side(cls: type) -> set[str]:
    """The library's private names an instance of ``cls`` may carry: from
    the library classes it derives from, or that it is mixed in with."""
    names: set[str] = set()
    for combined in [cls, *_everything_below(cls)]:
        for base in combined.__mro__:
            if _from_library(base):
                names |= _class_private_names(base)
    return names


def _our_modules():
    yield chatzilla
    for info in pkgutil.walk_packages(chatzilla.__path__, "chatzilla."):
        yield importlib.import_module(info.name)


def _attribute(node: ast.AST) -> tuple[ast.expr, str] | None:
    """(object, name) of ``x._name``, or of getattr/hasattr/setattr(x, "_name", ...)."""
    if isinstance(node, ast.Attribute) and _private(node.attr):
        return node.value, node.attr
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("getattr", "hasattr", "setattr")
        and len(node.args) >= 2
        and isinstance(node.args[1], ast.Constant)
        and isinstance(node.args[1].value, str)
        and _private(node.args[1].value)
    ):
        return node.args[0], node.args[1].value
    return None


def _reaches(module, everything: frozenset[str]) -> list[str]:
    tree = ast.parse(Path(module.__file__).read_text())
    found = []

    def visit(node, own: set[str]) -> None:
        if isinstance(node, ast.ClassDef):
            cls = getattr(module, node.name, None)
            own = _names_of_library_side(cls) if isinstance(cls, type) else set()
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name in own:
                    found.append(f"{module.__name__}:{item.lineno} overrides {item.name}")
        target = _attribute(node)
        if target is not None:
            value, name = target
            on_self = isinstance(value, ast.Name) and value.id in ("self", "cls")
            if name in (own if on_self else everything):
                found.append(f"{module.__name__}:{node.lineno} uses .{name}")
        for child in ast.iter_child_nodes(node):
            visit(child, own)

    visit(tree, set())
    return found


def test_no_module_but_compat_touches_a_private_name_of_the_libraries():
    everything = _library_private_names()
    found = [
        reach for module in _our_modules() if module is not compat for reach in _reaches(module, everything)
    ]
    assert found == []


def test_the_scan_finds_the_reaches_compat_makes():
    # The scan itself works: compat's own reaches are all found.
    found = _reaches(compat, _library_private_names())
    for name in ("_total_write_index", "_compressor", "_headers", "_transport_urls", "_get_session"):
        assert any(reach.endswith(f".{name}") for reach in found), name
    assert any(reach.endswith("overrides _execute") for reach in found)
