"""A relay between a page and the server's SockJS websocket, for losing the
connection on purpose.

Built on Playwright's ``page.route_web_socket``: every websocket the page
opens to ``/chat/.../websocket`` goes through :class:`Relay`, which passes
frames both ways and can

* ``cut()`` the connection: the page's side and the server's side are both
  closed (the server ends the session at once, as when a network drops), and
  every new websocket is refused until ``restore()``;
* drop frames from the server (``drop``: a predicate on each decoded
  application frame), e.g. the ``sent`` acknowledgement the page waits for;
* record what the page sent (``sent``: decoded application frames, in order;
  ``sent_at``: when each went through, in ``time.monotonic()`` seconds), and
  when it tried to connect (``attempts``, relayed or refused alike).

Chromium's offline emulation (``context.set_offline``) does not close an open
websocket, so it cannot stand in for this.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable

from playwright.sync_api import Page

SOCKJS_WEBSOCKET = re.compile(r"/chat/[^/]+/[^/]+/websocket$")


class Relay:
    """Put it on ``page`` before the page connects (then reload)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.online = True
        self.sent: list[dict] = []
        self.sent_at: list[float] = []
        self.dropped: list[dict] = []
        self.drop: Callable[[dict], bool] | None = None
        self.connections = 0  # websockets relayed so far
        self.refused = 0  # websockets refused while cut
        self.attempts: list[float] = []  # when each websocket was opened
        self._open: list[tuple] = []
        page.route_web_socket(SOCKJS_WEBSOCKET, self._route)

    def _route(self, page_side) -> None:
        self.attempts.append(time.monotonic())
        if not self.online:
            # Never connected to the server: the page sees its websocket close.
            self.refused += 1
            page_side.close()
            return
        server_side = page_side.connect_to_server()
        pair = (page_side, server_side)
        self._open.append(pair)
        self.connections += 1

        def from_server(packet) -> None:
            page_side.send(self._filter(packet))

        def from_page(packet) -> None:
            # sockjs-client sends a JSON array of frames, each JSON text.
            if isinstance(packet, str) and packet.startswith("["):
                frames = [json.loads(frame) for frame in json.loads(packet)]
                self.sent.extend(frames)
                self.sent_at.extend([time.monotonic()] * len(frames))
            server_side.send(packet)

        server_side.on_message(from_server)
        page_side.on_message(from_page)

    def _filter(self, packet):
        """A SockJS packet from the server without the frames ``drop`` wants gone."""
        if self.drop is None or not isinstance(packet, str) or not packet.startswith("a"):
            return packet
        kept = []
        for text in json.loads(packet[1:]):
            frame = json.loads(text)
            if self.drop(frame):
                self.dropped.append(frame)
            else:
                kept.append(text)
        # An empty array is a valid SockJS packet carrying nothing.
        return "a" + json.dumps(kept)

    def cut(self) -> None:
        """Close every relayed websocket on both sides; refuse new ones."""
        self.online = False
        for page_side, server_side in self._open:
            server_side.close()
            page_side.close()
        self._open.clear()

    def restore(self) -> None:
        """Let the page's next websocket through again."""
        self.online = True

    def frames(self, kind: str) -> list[dict]:
        """What the page sent of type ``kind``, in order."""
        return [frame for frame in self.sent if frame.get("type") == kind]

    def times(self, kind: str) -> list[float]:
        """When the page sent each frame of type ``kind``."""
        return [at for frame, at in zip(self.sent, self.sent_at, strict=False) if frame.get("type") == kind]
