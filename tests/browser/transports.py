"""Every SockJS transport the page can be forced onto carries the chat both
ways: the checks, used by test_signin's
test_every_transport_carries_the_session_cookie_and_messages_both_ways
(signed in, so that the session cookie is seen to go over every transport too).

The page's ``?transports=NAME`` hands NAME to sockjs-client as its only
allowed transport. Two checks that it really was used: the name the client
reports (``window.chatzilla.transport()``, sockjs-client's ``sock.transport``)
and the requests Chromium made, which must hit that transport's URLs.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from playwright.sync_api import expect

# Path endings of each transport's receiving requests (sending goes through
# /xhr_send or /jsonp_send); the iframe ones first load /chat/iframe.html.
RECEIVE = {
    "websocket": None,  # no HTTP request: seen as a WebSocket instead
    "xhr-streaming": "/xhr_streaming",
    "xhr-polling": "/xhr",
    "eventsource": "/eventsource",
    "jsonp-polling": "/jsonp",
    "iframe-eventsource": "/eventsource",
    "iframe-xhr-polling": "/xhr",
}
SESSION = re.compile(r"^/chat/[^/]+/[^/]+(/[a-z_]+)$")


def session_paths(person) -> set[str]:
    """The SockJS session endpoints the person's browser requested."""
    paths = set()
    for url in person.requests:
        match = SESSION.match(urlsplit(url).path)
        if match:
            paths.add(match.group(1))
    return paths


def load_again_on(person, url: str, transport: str) -> None:
    """The person's page left, then loaded on ``transport`` (and back in
    the chat, as after a reload)."""
    person.page.goto("about:blank")
    person.requests.clear()
    person.websockets.clear()
    person.page.goto(f"{url}?transports={transport}")
    expect(person.status).to_have_text("Connected")


def carries_messages_both_ways(alice, bob, transport: str, names: tuple[str, str]) -> None:
    """alice and bob (shown as ``names``) chat both ways on ``transport``,
    and their browsers really used it (and only it)."""
    alice.say(f"alice over {transport}")
    bob.sees(names[0], f"alice over {transport}")
    bob.say(f"bob over {transport}")
    alice.sees(names[1], f"bob over {transport}")
    alice.sees(names[0], f"alice over {transport}", mine=True)

    for person in (alice, bob):
        assert person.transport() == transport
        paths = session_paths(person)
        iframe = any(urlsplit(url).path == "/chat/iframe.html" for url in person.requests)
        assert iframe == transport.startswith("iframe-"), person.requests
        if transport == "websocket":
            assert paths == set(), paths
            assert [urlsplit(url).path.rsplit("/", 1)[-1] for url in person.websockets] == ["websocket"]
        else:
            assert person.websockets == []
            sender = "/jsonp_send" if transport == "jsonp-polling" else "/xhr_send"
            assert paths == {RECEIVE[transport], sender}, paths
