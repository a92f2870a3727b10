"""Small SockJS clients for the tests, speaking the protocol as sockjs-client does.

Each client exposes the same coroutine API: ``connect()``, ``send(frame)``
(a dict is JSON-encoded, a str is sent as one application frame verbatim),
``recv()`` (the next application frame, decoded), ``expect(type)`` and
``close()``. A SockJS close frame arrives as ``{"type": "_close", "code",
"reason"}`` so tests can assert on it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import string
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

_ids = itertools.count(1)

TIMEOUT = 5.0


def _session_path(base: str) -> str:
    session = "".join(random.choices(string.ascii_lowercase + string.digits, k=12))
    return f"{base}/chat/{next(_ids) % 1000:03d}/{session}"


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

    async def nothing(self, wait: float = 0.3) -> None:
        """Assert that no frame arrives within ``wait`` seconds."""
        try:
            frame = await asyncio.wait_for(self.frames.get(), wait)
        except asyncio.TimeoutError:
            return
        raise AssertionError(f"unexpected frame {frame!r}")

    async def join(self, email: str) -> dict:
        await self.send({"type": "join", "email": email})
        return await self.expect("joined")


class WebSocketClient(BaseClient):
    """SockJS's websocket transport: /chat/<server>/<session>/websocket."""

    def __init__(self, base_url: str, origin: str | None = None) -> None:
        super().__init__()
        self.url = _session_path(base_url.replace("http", "ws", 1)) + "/websocket"
        self.origin = origin
        self.ws = None

    async def connect(self) -> "WebSocketClient":
        headers = {"Origin": self.origin} if self.origin else {}
        self.ws = await websocket_connect(HTTPRequest(self.url, headers=headers))
        asyncio.ensure_future(self._read())
        await asyncio.wait_for(self.opened.wait(), TIMEOUT)
        return self

    async def _read(self) -> None:
        ws = self.ws
        while True:
            packet = await ws.read_message()
            if packet is None:
                self.closed = True
                return
            self._feed(packet)

    async def send(self, frame: Any) -> None:
        await self.ws.write_message(json.dumps([self._encode(frame)]))

    async def send_raw(self, text: str) -> None:
        """Send a websocket message that bypasses SockJS's array framing."""
        await self.ws.write_message(text)

    async def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
            self.ws = None


class RawWebSocketClient(BaseClient):
    """The raw endpoint /chat/websocket: one frame per websocket message."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.url = base_url.replace("http", "ws", 1) + "/chat/websocket"
        self.ws = None

    async def connect(self) -> "RawWebSocketClient":
        self.ws = await websocket_connect(self.url)
        asyncio.ensure_future(self._read())
        return self

    async def _read(self) -> None:
        ws = self.ws
        while True:
            text = await ws.read_message()
            if text is None:
                self.closed = True
                return
            self.frames.put_nowait(json.loads(text))

    async def send(self, frame: Any) -> None:
        await self.ws.write_message(self._encode(frame))

    async def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
            self.ws = None


class XhrPollingClient(BaseClient):
    """SockJS's xhr-polling transport: long-poll POST /xhr, send POST /xhr_send."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base = _session_path(base_url)
        self.http = AsyncHTTPClient()
        self._poller: asyncio.Future | None = None

    async def connect(self) -> "XhrPollingClient":
        self._poller = asyncio.ensure_future(self._poll())
        await asyncio.wait_for(self.opened.wait(), TIMEOUT)
        return self

    async def _poll(self) -> None:
        while not self.closed:
            response = await self.http.fetch(self.base + "/xhr", method="POST", body=b"",
                                             request_timeout=60, raise_error=False)
            if response.code != 200:
                self.closed = True
                return
            for packet in response.body.decode().splitlines():
                self._feed(packet)

    async def send(self, frame: Any) -> None:
        response = await self.http.fetch(self.base + "/xhr_send", method="POST",
                                         body=json.dumps([self._encode(frame)]),
                                         raise_error=False)
        assert response.code == 204, (response.code, response.body)

    async def close(self) -> None:
        # Polling clients just stop polling; the server expires the session.
        self.closed = True
        if self._poller is not None:
            self._poller.cancel()


class XhrStreamingClient(BaseClient):
    """SockJS's xhr-streaming transport: one long POST /xhr_streaming response."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base = _session_path(base_url)
        self.http = AsyncHTTPClient()
        self._buffer = ""
        self._stream: asyncio.Future | None = None

    def _chunk(self, chunk: bytes) -> None:
        self._buffer += chunk.decode()
        *packets, self._buffer = self._buffer.split("\n")
        for packet in packets:
            # The 2048-byte 'hhh…' prelude and heartbeats carry no frames.
            if packet and set(packet) != {"h"}:
                self._feed(packet)

    async def connect(self) -> "XhrStreamingClient":
        request = HTTPRequest(self.base + "/xhr_streaming", method="POST", body=b"",
                              streaming_callback=self._chunk, request_timeout=120)
        self._stream = asyncio.ensure_future(self.http.fetch(request, raise_error=False))
        await asyncio.wait_for(self.opened.wait(), TIMEOUT)
        return self

    async def send(self, frame: Any) -> None:
        response = await self.http.fetch(self.base + "/xhr_send", method="POST",
                                         body=json.dumps([self._encode(frame)]),
                                         raise_error=False)
        assert response.code == 204, (response.code, response.body)

    async def close(self) -> None:
        self.closed = True
        if self._stream is not None:
            self._stream.cancel()


TRANSPORTS = {
    "websocket": WebSocketClient,
    "xhr-polling": XhrPollingClient,
    "xhr-streaming": XhrStreamingClient,
}
