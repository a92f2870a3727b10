"""Fixtures for the browser tests: real server processes and Chromium.

The server a test gets
----------------------

* ``server``: by default the worker's **shared** server (started once per
  pytest-xdist worker, stopped with SIGTERM at the end of the session, which
  must exit 0). A server start and stop costs a second or two on a busy
  machine (forked from the worker's fork server, tests/forkserver.py),
  more than many a test itself. What keeps tests apart on it
  is the room: every test gets a fresh one (``room``) and ``people`` opens
  it, so presence (and its grace period), history, ids and typing start
  empty in every test, as on a fresh server.
* ``@pytest.mark.server_flags("--max-content", "80")`` (on a test or a
  module's ``pytestmark``): the shared server started with those flags
  (one per set of flags and worker). Prefer this to a server of your own
  when a setting only needs to differ. Shared servers have no flood
  control unless a test's flags turn it on (``SHARED_FLAGS``).
* ``@pytest.mark.own_server``: a fresh server for the test, stopped in its
  teardown (with the flags of ``server_flags``, if any, and its SQLite file
  in the test's ``tmp_path``). For tests that stop, restart or kill it, read
  its database, need the lobby (``/``) or its log to themselves. ``room``
  is then ``"lobby"``.
* ``start_server(port=0, *flags)``: starts more servers of the test's own,
  each stopped in teardown (the reconnect test restarts one on the same
  port). The servers of one test share one database (``tmp_path``).
* ``room``: this test's room; ``room_url``: its page on ``server``.

The browser and people
----------------------

* ``browser``: one headless Debian Chromium for the whole session, driven by
  Playwright's sync API (not the pytest-playwright plugin, whose ``base_url``
  fixture clashes with pytest-tornado's).
* ``people``: ``people("alice@example.com")`` opens a browser context (its
  own cookies and storage: one person) on the test's room and joins. The
  contexts are reused test after test (``Seat``: a person's page goes to
  about:blank, then their cookies, storage, tabs, media and viewport are
  cleared; the HTTP cache stays, as for someone coming back). A person
  whose test reaches for ``person.context`` (a script, a route, offline
  mode) has that context closed after the test, never reused; one served
  ``avatars`` gets a new context, closed after the test.
  ``path="r/dev"`` opens another page of the server instead (on a shared
  server, name other rooms after ``people.room``: ``f"r/{people.room}-b"``,
  as another test may use "dev" at the same time),
  ``viewport=PHONE`` a narrow one, ``color_scheme="dark"`` the dark theme,
  ``locale="en-US"`` another language than British English (the default,
  which writes 24-hour times and the day before the month).
  Every person is offline for Gravatar (as the test machines are): avatars
  show initials, unless ``avatars={email: png_bytes}`` serves pictures for
  some addresses (the others get Gravatar's 404). A CSP violation in any of
  the person's frames fails the test, as a console error.
* ``artifacts``: the directory for screenshots ($CHATZILLA_ARTIFACTS).
* ``axe_violations(page)``: the serious and critical findings of an axe-core
  scan of the page (node_modules/axe-core, injected by ``evaluate``, which
  the page's CSP does not apply to).

Wait for conditions (``expect``, ``wait_until`` in helpers.py), never for a
fixed time, unless the wait is what the test is about (nothing happens
within it); these tests run on loaded machines.

These tests run in their own pytest process (``make test-browser``): the
sync API keeps an event loop running that pytest-tornado cannot share.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import selectors
import signal
import subprocess
import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from chatzilla.protocol import DEFAULT_ROOM

from ..forkserver import FORK_SERVER

ROOT = Path(__file__).resolve().parents[2]

CHROMIUM = "/usr/bin/chromium"

#: The features Playwright 1.65.2 turns off (chromiumSwitches.ts). Chromium
#: keeps only the last --disable-features it is given, so ours repeats them.
PLAYWRIGHT_DISABLED_FEATURES = (
    "AvoidUnnecessaryBeforeUnloadCheckSync",
    "DestroyProfileOnBrowserClose",
    "HttpsUpgrades",
    "HttpsFirstBalancedModeAutoEnable",
    "LensOverlay",
    "MediaRouter",
    "PaintHolding",
    "ThirdPartyStoragePartitioning",
    "AvoidCorsURLLoaderRestartOnRedirect",
    "TcpPortRandomizationWin",
    "OptimizationHints",
    "NetworkTimeServiceQuerying",
    "AimEnabled",
    "PreconnectToSearch",
    "msForceBrowserSignIn",
    "msEdgeUpdateLaunchServicesPreferredVersion",
)
#: Every context (a person) is a window of its own, and headless Chromium 156
#: gave each window's address bar two WebUI popups, a renderer process of
#: their own that nothing here shows: about 0.8 s of CPU a person, 40 % of
#: what a person with ten messages cost.
#:
#: SpareRendererForSitePerProcess: Chromium keeps a spare renderer process
#: started for the next navigation, and a spare belongs to one context. The
#: seats take turns (a test's people are several contexts, each navigating
#: in turn), so nearly every navigation found the spare in another context,
#: dropped it and started another: 385-415 renderer processes for the 103
#: tests, where a seat needs one. Without it a seat's page keeps its one
#: process: 85-88 in a run, and about 8 % less CPU for the whole run.
DISABLED_FEATURES = (
    *PLAYWRIGHT_DISABLED_FEATURES,
    "WebUIOmniboxPopup",
    "WebUIOmniboxAimPopup",
    "WebUIOmniboxFullPopup",
    "SpareRendererForSitePerProcess",
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-features=" + ",".join(DISABLED_FEATURES),
    # Offline for Gravatar, as the test machines are, without a route: any
    # route turns the context's HTTP cache off (Playwright's interception).
    "--host-resolver-rules=MAP www.gravatar.com ~NOTFOUND",
]

#: Every context runs in this zone (UTC+05:30, no DST), so the HH:MM shown is
#: checked against a conversion the test does itself, minutes included.
TIMEZONE = "Asia/Kolkata"

#: A start takes half a second; on a machine busy with parallel test
#: workers it took more than 10.
STARTUP_TIMEOUT = 30.0
#: SIGTERM waits at most shutdown_grace (3 s by default) for connections.
SHUTDOWN_TIMEOUT = 6.0

#: A console error about a request or websocket the network refused.
NETWORK_ERROR = re.compile(
    r"Failed to load resource: net::ERR_|WebSocket connection to '[^']*' failed: .*net::ERR_"
)

_BANNER = re.compile(r"^Chatzilla is serving (http://\S+?/) ")

expect.set_options(timeout=5_000)

#: A phone: the narrowest width the page is made for.
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}

GRAVATAR = "https://www.gravatar.com/avatar/"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"

# Every frame reports its CSP violations to the console, as errors.
REPORT_CSP_VIOLATIONS = """
document.addEventListener('securitypolicyviolation', function (e) {
  console.error('CSP violation: ' + e.violatedDirective + ' blocked ' + e.blockedURI);
});
"""

#: Headless Chromium keeps every page visible, so tests hide the tab
#: themselves: ``window.__setHidden(true)`` makes ``document.hidden`` true and
#: fires ``visibilitychange``, as switching to another tab does.
VISIBILITY = """
(function () {
  var hidden = false;
  Object.defineProperty(document, 'hidden', { configurable: true, get: function () { return hidden; } });
  Object.defineProperty(document, 'visibilityState', {
    configurable: true, get: function () { return hidden ? 'hidden' : 'visible'; } });
  window.__setHidden = function (value) {
    hidden = value;
    document.dispatchEvent(new Event('visibilitychange'));
  };
})();
"""


def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto``: one worker a core. Each drives a Chromium, which keeps a
    core busy rendering, where the server tests mostly wait."""
    return os.cpu_count() or 1


def gravatar_hash(email: str) -> str:
    """Gravatar's key for an address: SHA-256 of it trimmed and lower-cased."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


# -- the server ---------------------------------------------------------------


class ChatServer:
    """One ``python -m chatzilla`` process (forked by the worker's fork
    server); its log (stderr) goes to a file."""

    def __init__(
        self, port: int, log_path: Path, db_path: Path, *args: str, env: dict[str, str] | None = None
    ) -> None:
        self.log_path = log_path
        self.db_path = db_path
        #: Whether tests share it (each in a room of its own).
        self.shared = False
        self._log = open(log_path, "wb")  # noqa: SIM115 (open as long as the server runs)
        # Forked from the worker's fork server (tests/forkserver.py): the
        # same process as `python -m chatzilla`, without the CPU of the
        # interpreter's start-up and the server's imports (the 44 servers of
        # a run of the browser tests: 22.7 s of CPU, 13.5 s forked).
        self.process = FORK_SERVER.spawn(
            [
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--db",
                str(db_path),
                # Protocol 1 (anyone joins as any address) unless a test
                # passes --auth link: a later flag wins.
                "--auth",
                "open",
                *args,
            ],
            dict(os.environ) if env is None else env,
            self._log,
            None,
        )
        try:
            self.url = self._read_banner()
        except BaseException:
            self.process.kill()
            self.process.wait()
            self._close_files()
            raise
        self.port = int(self.url.rstrip("/").rsplit(":", 1)[1])
        self.stopped = False

    def _read_banner(self) -> str:
        """The URL from the first stdout line, within STARTUP_TIMEOUT."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        line = b""
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while not line.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    raise AssertionError(
                        f"the server printed no banner in {STARTUP_TIMEOUT}s; log:\n{self.log()}"
                    )
                chunk = os.read(self.process.stdout.fileno(), 1)
                if not chunk:
                    self.process.wait(STARTUP_TIMEOUT)
                    raise AssertionError(
                        f"the server exited with {self.process.returncode} before serving; log:\n{self.log()}"
                    )
                line += chunk
        match = _BANNER.match(line.decode())
        assert match, f"unexpected first line from the server: {line!r}"
        return match.group(1)

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM; the server must exit 0 within SHUTDOWN_TIMEOUT seconds."""
        if self.stopped:
            return
        assert not self.shared, "a test stopped the shared server: mark it own_server"
        self.stopped = True
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(SHUTDOWN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            self._close_files()
            raise AssertionError(
                f"the server did not exit within {SHUTDOWN_TIMEOUT}s of SIGTERM; log:\n{self.log()}"
            ) from None
        self._close_files()
        assert code == 0, f"the server exited with {code} after SIGTERM; log:\n{self.log()}"

    def kill(self) -> None:
        assert not self.shared, "a test killed the shared server: mark it own_server"
        if not self.stopped:
            self.stopped = True
            self.process.kill()
            self.process.wait()
            self._close_files()

    def _close_files(self) -> None:
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()


#: Flags of every shared server, before a test's own ``server_flags`` (a
#: later flag wins). Every test comes from 127.0.0.1, and the rooms of a
#: worker's earlier tests stay occupied for the presence grace period after
#: them: the per-address limits (tested in the server tests) would refuse a
#: busy worker's next room. Flood control is off: it counts per address
#: across rooms, so bob's 25 messages in one test slowed down the next
#: test's bob; the modules about it (test_flood, test_sending) turn it on.
SHARED_FLAGS = (
    "--max-rooms-per-address",
    "1000",
    "--max-connections-per-address",
    "1000",
    "--rate-limit",
    "0",
)


@pytest.fixture(scope="session")
def shared_servers(tmp_path_factory):
    """``shared_servers(flags)``: the worker's server started with ``flags``
    (started on first use); all are stopped at the end of the session and
    must exit 0. Not for tests to use directly: see ``server``."""
    servers: dict[tuple[str, ...], ChatServer] = {}
    # Started whatever a test's monkeypatch set: only the flags count.
    env = {name: value for name, value in os.environ.items() if not name.startswith("CHATZILLA_")}

    def get(flags: tuple[str, ...]) -> ChatServer:
        if flags not in servers:
            path = tmp_path_factory.mktemp("shared-server")
            server = ChatServer(0, path / "server.log", path / "chatzilla.db", *SHARED_FLAGS, *flags, env=env)
            server.shared = True
            servers[flags] = server
        return servers[flags]

    yield get
    errors = []
    for server in servers.values():
        server.shared = False  # no test uses it any more: it may stop
        try:
            server.stop()
        except AssertionError as exc:
            errors.append(str(exc))
        finally:
            server.kill()
    assert not errors, "\n".join(errors)


@pytest.fixture
def start_server(tmp_path):
    """``start_server(port=0, *flags)`` starts a server; every one is stopped
    in teardown.

    The servers of one test share one database, as a restarted server would.
    """
    servers: list[ChatServer] = []

    def start(port: int = 0, *args: str) -> ChatServer:
        server = ChatServer(
            port, tmp_path / f"server-{len(servers) + 1}.log", tmp_path / "chatzilla.db", *args
        )
        servers.append(server)
        return server

    yield start
    errors = []
    for server in servers:
        try:
            server.stop()
        except AssertionError as exc:
            errors.append(str(exc))
        finally:
            server.kill()
    assert not errors, "\n".join(errors)


@pytest.fixture
def server(request) -> ChatServer:
    """The test's server: the worker's shared one for the test's
    ``server_flags``, or with ``own_server`` a fresh one (see the module's
    docstring)."""
    marker = request.node.get_closest_marker("server_flags")
    flags = tuple(marker.args) if marker else ()
    if request.node.get_closest_marker("own_server"):
        return request.getfixturevalue("start_server")(0, *flags)
    return request.getfixturevalue("shared_servers")(flags)


_rooms = itertools.count(1)


@pytest.fixture
def room(request, server) -> str:
    """This test's room: a fresh one on a shared server (its number in the
    worker and the test's name), the lobby on a server of the test's own."""
    if not server.shared:
        return DEFAULT_ROOM
    name = f"{next(_rooms)}-{request.node.name}".lower()
    # 64 characters at most: 16 are left for a test's other rooms' suffixes.
    return re.sub(r"[^a-z0-9_-]+", "_", name)[:48]


@pytest.fixture
def room_url(server, room) -> str:
    """The page of ``room`` on ``server``."""
    return server.url if room == DEFAULT_ROOM else f"{server.url}r/{room}"


# -- the browser --------------------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Seat:
    """A browser context and its page that people use one after another.

    A new context and window cost the browser about 0.5 s of CPU a person,
    and a context starts with an empty HTTP cache, so every person's page
    fetched and compiled all its scripts again. A seat keeps its context
    and page: a person leaves by the page going to about:blank, and the
    seat is emptied of what a person leaves behind there (the cookies,
    every origin's storage, other tabs, emulated media, the viewport)
    before the next one sits down. Its context-wide listeners pass what
    they see on to whoever sits there (``owner``).
    """

    def __init__(self, browser: Browser, options: dict) -> None:
        self.options = options
        self.context = browser.new_context(timezone_id=TIMEZONE, **options)
        self.context.add_init_script(REPORT_CSP_VIOLATIONS)
        self.context.add_init_script(VISIBILITY)
        self.context.on("request", self._on_request)
        self.page: Page | None = None
        self.owner: Person | None = None
        #: The origins the seat's pages asked for something (their storage is cleared).
        self.origins: set[str] = set()

    def _on_request(self, request) -> None:
        url = request.url
        if url.startswith("http"):
            self.origins.add("/".join(url.split("/", 3)[:3]))
        if self.owner is not None:
            self.owner._on_request(url)

    def take(self, owner: Person) -> Page:
        self.owner = owner
        if self.page is None or self.page.is_closed():
            self.page = self.context.new_page()
        return self.page

    def vacate(self) -> None:
        """Empties the seat for the next person."""
        self.owner = None
        page = self.page
        if page is not None and not page.is_closed():
            if _has_routes(page):
                page.close()
            else:
                # Unloads the page (its sockets close, its pagehide runs)
                # before its origin's storage is cleared.
                page.goto("about:blank")
                page.set_viewport_size(self.options["viewport"])
                # The seat's own scheme: "null" here would not mean the
                # context's but none (light).
                page.emulate_media(
                    media="null", color_scheme=self.options["color_scheme"], reduced_motion="null"
                )
                page.mouse.move(0, 0)
        for other in self.context.pages:
            if other is not page:
                other.close()
        self.context.clear_cookies()
        # A permission granted (notifications) or asked for stays with the
        # context: the next person starts with none.
        self.context.clear_permissions()
        if self.origins:
            if self.page is None or self.page.is_closed():
                self.page = self.context.new_page()
            cdp = self.context.new_cdp_session(self.page)
            for origin in self.origins:
                cdp.send("Storage.clearDataForOrigin", {"origin": origin, "storageTypes": "all"})
            cdp.detach()
            self.origins.clear()


def _has_routes(page: Page) -> bool:
    """Whether a route (of requests or websockets, e.g. a Relay's) was put on
    ``page``: the page is closed rather than reused, as Playwright's public
    API cannot remove a websocket route. True when it cannot tell."""
    impl = getattr(page, "_impl_obj", None)
    try:
        return bool(impl._routes or impl._web_socket_routes)
    except AttributeError:
        return True


class Seats:
    """The worker's free seats, by the options a context is made with."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.free: dict[str, list[Seat]] = {}

    def take(self, options: dict) -> Seat:
        key = json.dumps(options, sort_keys=True)
        free = self.free.get(key)
        return free.pop() if free else Seat(self.browser, options)

    def give_back(self, seat: Seat, *, reusable: bool) -> None:
        """Keeps ``seat`` for the next person, or closes its context if the
        test reached for it (or emptying it failed)."""
        if reusable:
            try:
                seat.vacate()
            except Exception:
                reusable = False
        if reusable:
            self.free.setdefault(json.dumps(seat.options, sort_keys=True), []).append(seat)
        else:
            seat.context.close()


class Person:
    """One person: a browser context (a seat of ``seats``, or with ``avatars``
    a context of their own) with one page on the chat."""

    def __init__(
        self,
        seats: Seats,
        url: str,
        *,
        transport: str | None = None,
        viewport: dict | None = None,
        path: str = "",
        color_scheme: str = "light",
        avatars: dict[str, bytes] | None = None,
        locale: str = "en-GB",
    ) -> None:
        self._seats = seats
        options = {
            "locale": locale,
            "viewport": viewport or {"width": 900, "height": 640},
            "color_scheme": color_scheme,
        }
        #: The Gravatar URLs the person's browser asked for.
        self.gravatar_requests: list[str] = []
        self.requests: list[str] = []
        self._pictures = {gravatar_hash(email): png for email, png in (avatars or {}).items()}
        # Pictures come through a route, which turns the HTTP cache off: such
        # a person gets a context of their own, closed when they leave.
        self._seat = Seat(seats.browser, options) if avatars else seats.take(options)
        #: Whether the test reached for the context (to add a script, a
        #: route, go offline...): then it is closed, not used again.
        self._touched = bool(avatars)
        if avatars:
            self._seat.context.route(GRAVATAR + "**", self._gravatar)
        self.page: Page = self._seat.take(self)
        self.page_errors: list[str] = []
        self.console_errors: list[str] = []
        #: Console errors about avatars that did not load (expected: offline).
        self.avatar_errors: list[str] = []
        self.dialogs: list[str] = []
        self.websockets: list[str] = []
        self._listeners = {
            "pageerror": lambda exc: self.page_errors.append(str(exc)),
            "console": self._on_console,
            "dialog": self._on_dialog,
            "websocket": lambda ws: self.websockets.append(ws.url),
        }
        for event, listener in self._listeners.items():
            self.page.on(event, listener)
        self.email: str | None = None
        self.closed = False
        query = f"?transports={transport}" if transport else ""
        self.page.goto(url + path + query)

    @property
    def context(self):
        """The person's browser context (one of their own from then on)."""
        self._touched = True
        return self._seat.context

    def _on_request(self, url: str) -> None:
        # The context sees the requests of every frame, the SockJS iframe's too.
        self.requests.append(url)
        if url.startswith(GRAVATAR):
            self.gravatar_requests.append(url)

    def _gravatar(self, route) -> None:
        key = route.request.url[len(GRAVATAR) :].split("?")[0]
        if key in self._pictures:
            route.fulfill(status=200, content_type="image/png", body=self._pictures[key])
        else:
            route.fulfill(status=404, content_type="text/plain", body="Not Found")  # d=404

    def _on_console(self, message) -> None:
        if message.type != "error":
            return
        if message.location.get("url", "").startswith(GRAVATAR):
            self.avatar_errors.append(message.text)
        else:
            self.console_errors.append(message.text)

    def _on_dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    # -- locators ----------------------------------------------------------

    @property
    def messages(self):
        """The conversation's messages (not the join/leave notices)."""
        return self.page.locator("#messages li.message")

    @property
    def notices(self):
        """What the notices of people coming and going say (not their times)."""
        return self.page.locator("#messages li.notice.presence .what")

    @property
    def pending(self):
        """Messages typed while offline, not acknowledged yet ("sending…")."""
        return self.page.locator("#messages li.message.pending")

    @property
    def failed(self):
        """Messages the server refused ("not sent: REASON")."""
        return self.page.locator("#messages li.message.failed")

    @property
    def marker(self):
        """The line at the top about the conversation's edge, if any."""
        return self.page.locator("#messages li.marker")

    def ids(self) -> list[int]:
        """The ids of the confirmed messages on screen, top to bottom."""
        return [
            int(i)
            for i in self.messages.evaluate_all(
                "items => items.filter(i => i.dataset.id).map(i => i.dataset.id)"
            )
        ]

    @property
    def composer(self):
        return self.page.locator("#message")

    @property
    def status(self):
        return self.page.locator("#status")

    @property
    def count(self):
        return self.page.locator("#presence-count")

    def message(self, content: str):
        """The one message whose text is exactly ``content``."""
        return self.messages.filter(
            has=self.page.locator(".content", has_text=re.compile("^" + re.escape(content) + "$"))
        )

    # -- actions -----------------------------------------------------------

    def join(self, email: str) -> Person:
        self.page.locator("#email").fill(email)
        self.page.locator("#join-form button[type=submit]").click()
        expect(self.page.locator("#chat")).to_be_visible()
        expect(self.page.locator("#join-form")).to_be_hidden()
        self.email = email
        return self

    def say(self, content: str) -> None:
        """Type ``content`` and press Enter; returns once it shows as "Me",
        confirmed by the server (with its id: not pending)."""
        self.composer.fill(content)
        self.composer.press("Enter")
        expect(self.message(content)).to_have_count(1)
        expect(self.message(content)).to_have_attribute("data-id", re.compile(r"^[0-9]+$"))
        expect(self.composer).to_have_value("")

    def sees(self, sender: str, content: str, *, mine: bool = False) -> None:
        """``content`` is on screen once, from ``sender`` (or "Me")."""
        item = self.message(content)
        expect(item).to_have_count(1)
        expect(item.locator(".sender")).to_have_text("Me" if mine else sender)
        if mine:
            expect(item).to_have_class(re.compile(r"\bmine\b"))
        else:
            expect(item).not_to_have_class(re.compile(r"\bmine\b"))

    @property
    def people_list(self):
        """The e-mails in the "Who's online" panel."""
        return self.page.locator("#people li .email")

    @property
    def typing(self):
        return self.page.locator("#typing")

    def hide(self) -> None:
        """Switch to another tab: the page is hidden."""
        self.page.evaluate("window.__setHidden(true)")

    def show(self) -> None:
        """Come back to the tab."""
        self.page.evaluate("window.__setHidden(false)")

    def transport(self):
        return self.page.evaluate("window.chatzilla.transport()")

    def close(self) -> None:
        """Closes the person's page (as closing the tab: no unload handlers
        run); their seat is vacated at the end of the test."""
        if not self.closed:
            self.closed = True
            self.page.close()

    def leave_seat(self) -> None:
        """At the end of the test: the page goes, the seat is given back."""
        for event, listener in self._listeners.items():
            self.page.remove_listener(event, listener)
        self._seats.give_back(self._seat, reusable=not self._touched)


@pytest.fixture(scope="session")
def seats(browser) -> Seats:
    """The worker's browser contexts, each reused person after person."""
    return Seats(browser)


@pytest.fixture
def people(seats, start_server, server, room):
    """``people(email=None, transport=None, on=None, path=None)``: a person on the page.

    Each is a fresh browser context on ``room``'s page (``path``: another
    page, relative to the server's root; ``on``: another server, or a proxy
    of this one); with ``email`` it also joins. ``people.room`` is the
    test's room. Teardown fails the test if a page threw (unless the error
    matches a pattern the test put in ``people.known_page_errors``), logged
    a console error (unless the test set ``people.allow_network_errors``)
    or opened a dialog. (It asks for ``start_server`` so that every person
    has gone before the test's own servers stop.)
    """
    opened: list[Person] = []
    room_path = "" if room == DEFAULT_ROOM else f"r/{room}"

    def open_person(
        email: str | None = None,
        *,
        transport: str | None = None,
        on: ChatServer | None = None,
        path: str | None = None,
        **kw,
    ) -> Person:
        if path is None:
            # A server of its own (not a proxy of this one): its lobby.
            path = "" if isinstance(on, ChatServer) and not on.shared else room_path
        person = Person(seats, (on or server).url, transport=transport, path=path, **kw)
        opened.append(person)
        if email is not None:
            person.join(email)
        return person

    open_person.room = room
    open_person.allow_network_errors = False
    open_person.known_page_errors = []
    yield open_person
    problems = []
    for person in opened:
        console = person.console_errors
        if open_person.allow_network_errors:
            console = [text for text in console if not NETWORK_ERROR.match(text)]
        thrown = [
            text
            for text in person.page_errors
            if not any(re.fullmatch(known, text) for known in open_person.known_page_errors)
        ]
        if thrown or console or person.dialogs:
            problems.append(
                f"{person.email}: page errors {thrown}, console errors {console}, dialogs {person.dialogs}"
            )
    for person in opened:
        person.leave_seat()
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go: $CHATZILLA_ARTIFACTS, else ./artifacts at the repo root."""
    path = Path(os.environ.get("CHATZILLA_ARTIFACTS") or ROOT / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def axe_source() -> str:
    return AXE.read_text()


@pytest.fixture
def axe_violations(axe_source):
    """``axe_violations(page)``: axe-core's serious and critical findings,
    each as "rule-id (impact): the nodes' selectors"."""

    def scan(page: Page) -> list[str]:
        if not page.evaluate("typeof window.axe === 'object'"):
            page.evaluate(axe_source)
        result = page.evaluate("""async () => {
          const r = await axe.run(document, {resultTypes: ['violations']});
          return r.violations.map(v => ({id: v.id, impact: v.impact,
                                         nodes: v.nodes.map(n => n.target.join(' '))}));
        }""")
        return [
            f"{v['id']} ({v['impact']}): {json.dumps(v['nodes'])}"
            for v in result
            if v["impact"] in ("serious", "critical")
        ]

    return scan
