"""The floor: the straightforward sockjs-tornado broadcast chat, for comparison.

It speaks the benchmark's subset of ../shared/PROTOCOL.md (version 1) the way
the sockjs-tornado examples do, with no storage and no batching:

- ``join`` (with the optional ``room`` extension, default ``lobby``) gets
  ``joined`` with the participants and an empty history; the others in the
  room get ``presence`` ``join`` when an e-mail gains its first connection
  and ``leave`` when it loses its last;
- ``message`` is sent to every other connection of the room, one ``send``
  per recipient (each re-encodes the frame, as the naive examples do), then
  acknowledged to the sender with ``sent`` (``id``, ``ts``, ``ref``);
- anything else gets an ``error`` frame and the connection stays open.

    .venv/bin/python bench/floor_server.py --port 8001

prints ``Floor is serving http://127.0.0.1:PORT/`` once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import time

import tornado.httpserver
import tornado.netutil
import tornado.web
from sockjs.tornado import SockJSConnection, SockJSRouter

LOBBY = "lobby"


class Room:
    """The connections of one room and how many each e-mail has."""

    def __init__(self) -> None:
        self.members: dict[FloorConnection, str] = {}
        self.per_email: dict[str, int] = {}
        self.last_id = 0


class FloorRouter(SockJSRouter):
    """The SockJS router, carrying the rooms its connections share."""

    def __init__(self, prefix: str) -> None:
        self.rooms: dict[str, Room] = {}
        super().__init__(FloorConnection, prefix)


class FloorConnection(SockJSConnection):
    def on_open(self, info) -> None:
        self.rooms: dict[str, Room] = self.session.server.rooms
        self.email: str | None = None
        self.room: str | None = None

    def reply(self, frame: dict) -> None:
        self.send(json.dumps(frame))

    def error(self, code: str, reason: str, ref=None) -> None:
        frame = {"type": "error", "code": code, "reason": reason}
        if ref is not None:
            frame["ref"] = ref
        self.reply(frame)

    def on_message(self, message) -> None:
        try:
            frame = json.loads(message)
        except ValueError:
            frame = None
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            return self.error("bad_frame", "a frame must be a JSON object with a string 'type'")
        ref = frame.get("ref")
        if frame["type"] == "join":
            self.join(frame.get("email"), frame.get("room", LOBBY), ref)
        elif frame["type"] == "message":
            self.say(frame.get("content"), ref)
        else:
            self.error("bad_frame", "unknown frame type", ref)

    def join(self, email, room_name, ref) -> None:
        if self.email is not None:
            return self.error("already_joined", "this connection has already joined", ref)
        if not isinstance(email, str) or "@" not in email.strip() or not isinstance(room_name, str):
            return self.error("invalid_email", "an e-mail address is required", ref)
        email = email.strip()
        room = self.rooms.setdefault(room_name, Room())
        self.email, self.room = email, room_name
        room.members[self] = email
        room.per_email[email] = room.per_email.get(email, 0) + 1
        self.reply({"type": "joined", "email": email, "participants": list(room.per_email), "history": []})
        if room.per_email[email] == 1:
            self.tell_others(
                room, {"type": "presence", "event": "join", "email": email, "count": len(room.per_email)}
            )

    def say(self, content, ref) -> None:
        if self.email is None:
            return self.error("not_joined", "join before sending messages", ref)
        if not isinstance(content, str) or not content.strip():
            return self.error("empty", "the message is empty", ref)
        room = self.rooms[self.room]
        room.last_id += 1
        ts = time.time()
        self.tell_others(
            room,
            {
                "type": "message",
                "id": room.last_id,
                "sender": self.email,
                "content": content.strip(),
                "ts": ts,
            },
        )
        ack = {"type": "sent", "id": room.last_id, "ts": ts}
        if ref is not None:
            ack["ref"] = ref
        self.reply(ack)

    def tell_others(self, room: Room, frame: dict) -> None:
        text = json.dumps(frame)
        for conn in list(room.members):
            if conn is not self:
                conn.send(text)

    def on_close(self) -> None:
        if self.room is None:
            return
        room = self.rooms[self.room]
        room.members.pop(self, None)
        left = room.per_email[self.email] - 1
        if left:
            room.per_email[self.email] = left
        else:
            del room.per_email[self.email]
            self.tell_others(
                room,
                {"type": "presence", "event": "leave", "email": self.email, "count": len(room.per_email)},
            )
        if not room.members:
            del self.rooms[self.room]
        self.room = None


async def serve(host: str, port: int) -> None:
    # The router captures the current IOLoop, so it is built here, inside the loop.
    router = FloorRouter("/chat")
    app = tornado.web.Application(router.urls)
    sockets = tornado.netutil.bind_sockets(port, host)
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    print(f"Floor is serving http://{host}:{sockets[0].getsockname()[1]}/", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="The sockjs-tornado floor server for bench/run.py")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level.upper())
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
