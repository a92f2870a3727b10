"""The page's routes: ``/`` is the lobby, ``/r/ROOM`` a room (in any case:
``/r/Dev`` redirects to ``/r/dev``), anything else 404; error pages for
browsers; the script's modules."""

from __future__ import annotations

import base64
import hashlib
import json
from html.parser import HTMLParser

import pytest

from chatzilla import protocol


class _Page(HTMLParser):
    """Picks out the parts of the page the script relies on."""

    def __init__(self) -> None:
        super().__init__()
        self.body: dict | None = None
        self.room_name = None
        self.title = ""
        self.inline_scripts = 0
        self.import_maps: list[str] = []
        self.module_scripts: list[str] = []
        self.classic_scripts: list[dict] = []
        self.preloads: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "body":
            self.body = attrs
        elif tag == "script" and attrs.get("type") == "importmap":
            self._in = "importmap"
            self.import_maps.append("")
        elif tag == "script" and "src" not in attrs:
            self.inline_scripts += 1
        elif tag == "script" and attrs.get("type") == "module":
            self.module_scripts.append(attrs["src"])
        elif tag == "script":
            self.classic_scripts.append(attrs)
        elif tag == "link" and attrs.get("rel") == "modulepreload":
            self.preloads.append(attrs["href"])
        elif attrs.get("id") == "room-name":
            self._in = "room-name"
            self.room_name = ""
        elif tag == "title":
            self._in = "title"

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in == "room-name":
            self.room_name += data
        elif self._in == "title":
            self.title += data
        elif self._in == "importmap":
            self.import_maps[-1] += data


async def _page(fetch, path: str) -> _Page:
    response = await fetch(path)
    assert response.code == 200, (path, response.code)
    assert response.headers["Content-Type"] == "text/html; charset=UTF-8"
    page = _Page()
    page.feed(response.body.decode("utf-8"))
    page.policy = response.headers["Content-Security-Policy"]
    return page


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "path, room",
    [
        ("/", "lobby"),
        ("/r/dev", "dev"),
        ("/r/dev-team_2", "dev-team_2"),
        ("/r/" + "x" * 64, "x" * 64),
        ("/r/lobby", "lobby"),
    ],
)
async def test_the_page_names_its_room(fetch, path, room):
    page = await _page(fetch, path)
    assert page.body["data-room"] == room
    assert page.room_name == room
    assert page.title.startswith(room)
    assert page.inline_scripts == 0


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "path",
    [
        "/r/Bad%20Name",
        "/r/" + "x" * 65,
        "/r/caf%C3%A9",
        "/r/%FF",  # not even UTF-8
        "/r/a%2Fb",  # an encoded slash is still not a room name
        "/r/dev/",
        "/r/dev/more",
        "/r/",
        "/r",
        "/room/dev",
    ],
)
async def test_a_path_that_is_not_a_room_is_a_plain_404(fetch, path):
    response = await fetch(path)
    assert response.code == 404, path
    assert b"data-room" not in response.body


@pytest.mark.gen_test
@pytest.mark.parametrize("name", ["a", "0", "-", "_", "a-b_c9", "Lobby", "a.b", "a b", "é", "x" * 65])
async def test_the_route_follows_the_protocol_rule(fetch, name):
    """A page exists exactly for the names a ``join`` accepts; another name
    that is one of those in lower case redirects there."""

    def valid(room: str) -> bool:
        try:
            protocol.check_room(room)
        except protocol.ProtocolError:
            return False
        return True

    response = await fetch("/r/" + name.replace(" ", "%20").replace("é", "%C3%A9"), follow_redirects=False)
    if valid(name):
        assert response.code == 200, name
    elif valid(name.lower()):
        assert response.code == 301, name
        assert response.headers["Location"] == "/r/" + name.lower()
    else:
        assert response.code == 404, name


@pytest.mark.gen_test
@pytest.mark.parametrize(
    "path, location",
    [
        ("/r/General", "/r/general"),
        ("/r/LOBBY", "/r/lobby"),
        ("/r/Dev-Team_2?transports=websocket", "/r/dev-team_2?transports=websocket"),
    ],
)
async def test_a_room_in_another_case_redirects_to_the_room(fetch, path, location):
    response = await fetch(path, follow_redirects=False)
    assert response.code == 301
    assert response.headers["Location"] == location
    assert (await fetch(path)).code == 200


@pytest.mark.gen_test
@pytest.mark.parametrize("path", ["/r/Bad%20Name", "/no/such/page", "/static/nothing.js", "/r/%FF"])
async def test_a_browser_gets_an_error_page_with_a_way_back(fetch, path):
    response = await fetch(path, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert response.code == 404
    assert response.headers["Content-Type"] == "text/html; charset=UTF-8"
    assert "Content-Security-Policy" in response.headers
    body = response.body.decode()
    assert "<title>Not Found · Chatzilla</title>" in body
    assert '<a class="button" href="/">Go to the lobby</a>' in body
    assert "<script" not in body
    # A program asking for anything gets the one line.
    plain = await fetch(path, headers={"Accept": "*/*"})
    assert plain.body == b"404 Not Found\n"


@pytest.mark.gen_test
async def test_the_script_is_versioned_modules_preloaded_together(fetch):
    page = await _page(fetch, "/")
    # One import map, the only inline script, allowed by its hash alone.
    assert len(page.import_maps) == 1 and page.inline_scripts == 0
    digest = base64.b64encode(hashlib.sha256(page.import_maps[0].encode()).digest()).decode()
    script_src = next(d for d in page.policy.split("; ") if d.startswith("script-src "))
    assert script_src == f"script-src 'self' 'sha256-{digest}'"
    # Every module's plain name (as the modules import each other) has its
    # versioned URL, which is what the page loads and preloads.
    imports = json.loads(page.import_maps[0])["imports"]
    assert "/static/js/conversation.js" in imports and "/static/js/view/list.js" in imports
    assert page.module_scripts == [imports["/static/js/main.js"]]
    assert page.preloads == list(imports.values())
    for name, url in imports.items():
        assert url.startswith(name + "?v=")
        response = await fetch(url)
        assert response.code == 200, url
        assert response.headers["Content-Type"].split(";")[0] in ("application/javascript", "text/javascript")
        # Kept for good: a new version has a new URL.
        assert "max-age" in response.headers["Cache-Control"], url
        # Unversioned, a module is checked with the server on every use.
        plain = await fetch(name)
        assert plain.headers["Cache-Control"] == "no-cache", name
        assert plain.body == response.body
    # sockjs-client's bundle, versioned too, runs before the modules.
    (bundle,) = page.classic_scripts
    assert "defer" in bundle and bundle["src"].startswith("/vendor/sockjs/sockjs.min.js?v=")
    assert "max-age" in (await fetch(bundle["src"])).headers["Cache-Control"]


@pytest.mark.gen_test
async def test_a_room_page_loads_the_same_script_and_styles(fetch):
    lobby = (await fetch("/")).body.decode("utf-8")
    room = (await fetch("/r/dev")).body.decode("utf-8")
    # The same document apart from the room's name.
    for before, after in (('"dev"', '"lobby"'), (">dev<", ">lobby<"), ("<title>dev ", "<title>lobby ")):
        assert before in room
        room = room.replace(before, after)
    assert room == lobby
