"""Small SockJS clients for the tests, speaking the protocol as sockjs-client does.

Each client exposes the same coroutine API: ``connect()``, ``send(frame)``
(a dict is JSON-encoded, a str is sent as one application frame verbatim),
``recv()`` (the next application frame, decoded), ``expect(type)``,
``expect_many(type, n)``, ``nothing()``, ``join(email)``,
``say(content, ref)`` and ``close()``. A SockJS close frame arrives as
``{"type": "_close", "code", "reason"}`` so tests can assert on it.
Every kind takes ``origin=`` (sent as the ``Origin`` header of each request,
as a browser page on that origin would) and ``headers=`` (more headers for
each request, such as a proxy's ``X-Forwarded-For``), and records ``status``, the HTTP
status of its first request. The SockJS clients also have ``send_packet(text)``, one SockJS packet sent
verbatim (to send what sockjs-client never would); the websocket ones
``send_raw``/``send_binary`` and ``wait_closed()``; the polling one
``abandon()``.

``close()`` drops the connection the way a browser closing its tab does: a
websocket sends its close frame; the HTTP transports abort their long request
(its TCP connection is closed, so the server notices at once when it is
waiting on it). The long HTTP requests therefore run on sockets of their own
(:class:`_LongRequest`) rather than through ``AsyncHTTPClient``, which can
neither abort a request nor run more than ten at once.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import socket
import string
from typing import Any
from urllib.parse import quote_plus, urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.iostream import IOStream, StreamClosedError
from tornado.websocket import WebSocketClosedError, websocket_connect

_ids = itertools.count(1)
# Its own source of randomness: Hypothesis reseeds the global one for every
# example, which would give every example's client the same session id.
_random = random.SystemRandom()

TIMEOUT = 5.0


def _session_path(base: str) -> str:
    session = "".join(_random.choices(string.ascii_lowercase + string.digits, k=12))
    return f"{base}/chat/{next(_ids) % 1000:03d}/{session}"


async def _finish(task: asyncio.Future) -> None:
    """Wait for a client's reading task to end; re-raise what broke it."""
    await asyncio.wait([task], timeout=TIMEOUT)
    if task.done():
        task.result()
    else:
        task.cancel()
        await asyncio.wait([task])
        raise AssertionError(f"{task!r} did not end within {TIMEOUT}s of close()")


class Refused(Exception):
    """The server refused to open a session; ``status`` is the HTTP status."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class BaseClient:
    """Turns SockJS framing ('o', 'h', 'a[...]', 'c[...]') into app frames."""

    def __init__(self) -> None:
        self.frames: asyncio.Queue = asyncio.Queue()
        self.opened = asyncio.Event()
        self.closed = False

    def _feed(self, packet: str) -> None:
        if not packet:
            return
        kind, body = packet[0], packet[1:]
        if kind == "o":
            self.opened.set()
        elif kind == "h":
            pass
        elif kind == "a":
            for text in json.loads(body):
                self.frames.put_nowait(json.loads(text))
        elif kind == "c":
            code, reason = json.loads(body)
            self.closed = True
            self.frames.put_nowait({"type": "_close", "code": code, "reason": reason})
        else:
            raise AssertionError(f"unexpected SockJS packet {packet!r}")

    @staticmethod
    def _encode(frame: Any) -> str:
        return frame if isinstance(frame, str) else json.dumps(frame)

    async def recv(self, timeout: float = TIMEOUT) -> dict:
        return await asyncio.wait_for(self.frames.get(), timeout)

    async def expect(self, kind: str, timeout: float = TIMEOUT) -> dict:
        """The next frame, which must be of type ``kind``."""
        frame = await self.recv(timeout)
        assert frame["type"] == kind, f"expected {kind!r}, got {frame!r}"
        return frame

    async def expect_many(self, kind: str, count: int, timeout: float = TIMEOUT) -> list[dict]:
        """The next ``count`` frames, each of type ``kind``."""
        return [await self.expect(kind, timeout) for _ in range(count)]

    async def nothing(self, wait: float = 0.3) -> None:
        """Assert that no frame arrives within ``wait`` seconds."""
        try:
            frame = await asyncio.wait_for(self.frames.get(), wait)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected frame {frame!r}")

    async def join(self, email: str) -> dict:
        await self.send({"type": "join", "email": email})
        return await self.expect("joined")

    async def say(self, content: str, ref: str | None = None) -> dict:
        """Send a message and return its ``sent`` acknowledgement."""
        frame = {"type": "message", "content": content}
        if ref is not None:
            frame["ref"] = ref
        await self.send(frame)
        return await self.expect("sent")


def _request_headers(origin: str | None, extra: dict[str, str] | None) -> dict[str, str]:
    """The headers of each request: ``Origin`` (when given), then ``extra``."""
    return {**({"Origin": origin} if origin else {}), **(extra or {})}


class _WebSocketBase(BaseClient):
    def __init__(self, url: str, origin: str | None, headers: dict[str, str] | None) -> None:
        super().__init__()
        self.url = url
        self.headers = _request_headers(origin, headers)
        self.ws = None
        self._reader: asyncio.Future | None = None
        #: The WebSocket close code and reason, once the server has closed it.
        self.ws_close_code: int | None = None
        self.ws_close_reason: str | None = None

    async def _read(self) -> None:
        ws = self.ws  # close() forgets self.ws while this still reads
        while True:
            packet = await ws.read_message()
            if packet is None:
                self.closed = True
                self.ws_close_code, self.ws_close_reason = ws.close_code, ws.close_reason
                return
            self._on_packet(packet)

    def _on_packet(self, packet) -> None:
        raise NotImplementedError

    async def _open(self) -> None:
        self.ws = await websocket_connect(HTTPRequest(self.url, headers=self.headers))
        self._reader = asyncio.ensure_future(self._read())

    async def wait_closed(self, timeout: float = TIMEOUT) -> None:
        """Wait until the server has ended the websocket."""
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)

    async def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
            self.ws = None
        if self._reader is not None:
            # The server answers the close frame; then the reader ends.
            reader, self._reader = self._reader, None
            await _finish(reader)


class WebSocketClient(_WebSocketBase):
    """SockJS's websocket transport: /chat/<server>/<session>/websocket."""

    def __init__(
        self, base_url: str, origin: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(_session_path(base_url.replace("http", "ws", 1)) + "/websocket", origin, headers)

    async def connect(self) -> WebSocketClient:
        await self._open()
        await asyncio.wait_for(self.opened.wait(), TIMEOUT)
        return self

    def _on_packet(self, packet) -> None:
        self._feed(packet)

    async def send(self, frame: Any) -> None:
        await self.ws.write_message(json.dumps([self._encode(frame)]))

    async def send_raw(self, data: str | bytes) -> None:
        """Send a websocket message that bypasses SockJS's array framing
        (bytes go as a binary message)."""
        await self.ws.write_message(data, binary=isinstance(data, bytes))

    async def send_packet(self, payload: str) -> None:
        """Send one SockJS packet (normally a JSON array of strings) verbatim."""
        await self.send_raw(payload)


class RawWebSocketClient(_WebSocketBase):
    """The raw endpoint /chat/websocket: one frame per websocket message."""

    def __init__(
        self, base_url: str, origin: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(base_url.replace("http", "ws", 1) + "/chat/websocket", origin, headers)

    async def connect(self) -> RawWebSocketClient:
        await self._open()
        return self

    def _on_packet(self, packet) -> None:
        self.frames.put_nowait(json.loads(packet))

    async def send(self, frame: Any) -> None:
        await self.ws.write_message(self._encode(frame))

    async def send_binary(self, data: bytes) -> None:
        """Send one binary websocket message."""
        await self.ws.write_message(data, binary=True)


class _LongRequest:
    """One HTTP/1.0 request on a socket of its own, so it can be aborted.

    HTTP/1.0 keeps the server from chunking a streamed response: the body is
    the bytes that follow the head, up to the end of the connection.
    """

    def __init__(self, url: str, method: str = "POST", headers: dict[str, str] | None = None) -> None:
        self.url = urlsplit(url)
        self.method = method
        self.headers = headers or {}
        self.stream: IOStream | None = None
        self.code: int | None = None
        self.head: dict[str, str] = {}

    async def open(self) -> _LongRequest:
        self.stream = IOStream(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        await self.stream.connect((self.url.hostname, self.url.port))
        target = self.url.path + (f"?{self.url.query}" if self.url.query else "")
        extra = "".join(f"{name}: {value}\r\n" for name, value in self.headers.items())
        await self.stream.write(
            f"{self.method} {target} HTTP/1.0\r\nHost: {self.url.netloc}\r\n"
            f"{extra}Content-Length: 0\r\n\r\n".encode()
        )
        head = (await self.stream.read_until(b"\r\n\r\n")).decode("latin-1")
        status, *lines = head.strip().split("\r\n")
        self.code = int(status.split(" ", 2)[1])
        self.head = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        return self

    async def read(self) -> bytes | None:
        """The next bytes of the body, or None at its end."""
        try:
            return await self.stream.read_bytes(65536, partial=True)
        except StreamClosedError:
            return None

    def abort(self) -> None:
        if self.stream is not None:
            self.stream.close()


class _HttpClient(BaseClient):
    """Base of the HTTP transports: a receiving loop and POST /xhr_send."""

    path = ""
    method = "POST"
    send_path = "/xhr_send"

    def __init__(
        self, base_url: str, origin: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__()
        self.base = _session_path(base_url)
        self.headers = _request_headers(origin, headers)
        self.status: int | None = None
        self.http = AsyncHTTPClient()
        self._request: _LongRequest | None = None
        self._receiver: asyncio.Future | None = None
        self._stop = False

    async def connect(self):
        """Open the session; raises :class:`Refused` when the server answers
        the first request with an HTTP error."""
        self._receiver = asyncio.ensure_future(self._receive())
        opened = asyncio.ensure_future(self.opened.wait())
        await asyncio.wait([opened, self._receiver], timeout=TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        if not self.opened.is_set():
            opened.cancel()
            if self.status not in (None, 200):
                raise Refused(self.status)
            raise AssertionError(f"the session did not open within {TIMEOUT}s")
        return self

    async def _receive(self) -> None:
        # One request after another, as sockjs-client does, until closed.
        try:
            while not (self._stop or self.closed):
                self._request = request = _LongRequest(
                    self.base + self.path, method=self.method, headers=self.headers
                )
                await request.open()
                if self.status is None:
                    self.status = request.code
                if request.code != 200:
                    self.closed = True
                    return
                buffer = b""
                while (chunk := await request.read()) is not None:
                    buffer += chunk
                    *packets, buffer = buffer.split(b"\n")
                    for packet in packets:
                        self._packet(packet.decode())
                request.abort()
        except StreamClosedError:
            pass  # aborted by close() while connecting
        finally:
            self._request = None

    def _packet(self, packet: str) -> None:
        self._feed(packet)

    async def send(self, frame: Any) -> None:
        await self.send_packet(json.dumps([self._encode(frame)]))

    async def send_packet(self, payload: str) -> None:
        """Send one SockJS packet (normally a JSON array of strings) verbatim."""
        await self.send_body(payload, expect=204)

    async def send_body(self, body: str | bytes, expect: int | None = None, headers: dict | None = None):
        """POST ``body`` to the transport's send URL as it is; return the response."""
        response = await self.http.fetch(
            self.base + self.send_path,
            method="POST",
            body=body,
            headers={**self.headers, **(headers or {})},
            raise_error=False,
        )
        if expect is not None:
            assert response.code == expect, (response.code, response.body)
        return response

    async def close(self) -> None:
        """Abort the long request: the server closes the session at once when
        it was waiting on that request, else the session expires after the
        server's disconnect_delay."""
        self._stop = True
        if self._request is not None:
            self._request.abort()
        if self._receiver is not None:
            receiver, self._receiver = self._receiver, None
            await _finish(receiver)
        self.closed = True


class XhrPollingClient(_HttpClient):
    """SockJS's xhr-polling transport: long-poll POST /xhr, send POST /xhr_send."""

    path = "/xhr"

    def abandon(self) -> None:
        """Stop polling without aborting: the pending poll ends with the next
        server heartbeat, then the server expires the session after its
        disconnect_delay (a browser that lost the network). Set a short
        heartbeat_delay in the test's settings."""
        self._stop = True


class XhrStreamingClient(_HttpClient):
    """SockJS's xhr-streaming transport: long POST /xhr_streaming responses."""

    path = "/xhr_streaming"

    def _packet(self, packet: str) -> None:
        # The 2048-byte 'hhh…' prelude and heartbeats carry no frames.
        if set(packet) != {"h"}:
            self._feed(packet)


class EventSourceClient(_HttpClient):
    """SockJS's eventsource transport: a long GET /eventsource of
    ``data: <packet>`` events, send POST /xhr_send."""

    path = "/eventsource"
    method = "GET"

    def _packet(self, packet: str) -> None:
        packet = packet.rstrip("\r")
        if packet.startswith("data: "):
            self._feed(packet[len("data: ") :])


class JsonpClient(_HttpClient):
    """SockJS's jsonp-polling transport: GET /jsonp?c=callback answers
    ``callback("<packet>");``, send POST /jsonp_send as a form field ``d``."""

    path = "/jsonp?c=cb"
    method = "GET"
    send_path = "/jsonp_send"

    def _packet(self, packet: str) -> None:
        packet = packet.rstrip("\r").removeprefix("/**/")  # a comment first: no file type sniffed
        if packet:
            assert packet.startswith("cb(") and packet.endswith(");"), packet[:80]
            self._feed(json.loads(packet[3:-2]))

    async def send_packet(self, payload: str) -> None:
        response = await self.send_body(
            "d=" + quote_plus(payload), headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert response.code == 200, (response.code, response.body)


TRANSPORTS = {
    "websocket": WebSocketClient,
    "xhr-polling": XhrPollingClient,
    "xhr-streaming": XhrStreamingClient,
}

#: Every client kind ``clients(kind=...)`` can open.
KINDS = {
    **TRANSPORTS,
    "raw-websocket": RawWebSocketClient,
    "eventsource": EventSourceClient,
    "jsonp-polling": JsonpClient,
}

__all__ = [
    "KINDS",
    "TIMEOUT",
    "TRANSPORTS",
    "BaseClient",
    "EventSourceClient",
    "JsonpClient",
    "RawWebSocketClient",
    "Refused",
    "WebSocketClient",
    "WebSocketClosedError",
    "XhrPollingClient",
    "XhrStreamingClient",
]
