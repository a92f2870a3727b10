"""Accessibility: axe-core finds nothing serious or critical (desktop, phone
with the panel open, dark, before and after joining); every control is
labelled and reachable by keyboard; the message list is a polite live
region."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import PHONE
from .helpers import after_layout, restart_with
from .pictures import portrait
from .relay import Relay
from .test_flood import TYPE_AND_SEND_ALL

MAX_CONTENT = 200

pytestmark = [pytest.mark.browser, pytest.mark.server_flags("--max-content", str(MAX_CONTENT))]

#: The tests of ``chat_with_everything``, which restarts the server.
restarts = pytest.mark.own_server


@pytest.fixture
def chat_with_everything(people, server, start_server, monkeypatch):
    """``chat_with_everything()``: Alice's page with most of what a page
    can show: messages of two people in groups, links, notices, a failed
    message (her page was loaded before the server restarted with a lower
    limit), the typing line and the jump button. Returns alice, bob and
    alice's relay."""

    def build():
        people.allow_network_errors = True  # the restart, and later the relay, cut alice off
        pictures = {"bob@example.com": portrait()}
        alice = people(transport="websocket", avatars=pictures)
        relay = Relay(alice.page)
        alice.page.reload()
        expect(alice.status).to_have_text("Connected")
        # Restarted before anyone joins (nobody to wait for), without flood
        # control: bob's 25 messages go in one go.
        restart_with(
            start_server,
            server,
            monkeypatch,
            CHATZILLA_MAX_CONTENT=str(MAX_CONTENT // 2),
            CHATZILLA_RATE_LIMIT="0",
        )
        # Back to the tab: the page tries again at once.
        alice.hide()
        alice.show()
        expect(alice.status).to_have_text("Connected", timeout=15_000)
        alice.join("alice@example.com")
        bob = people("bob@example.com", avatars=pictures)
        alice.say("hello")
        alice.composer.fill("far too long " * 12)
        alice.composer.press("Enter")
        expect(alice.failed).to_have_count(1)
        texts = [
            f"message {i}, with https://example.com/{i}" if i % 4 == 0 else f"message {i}" for i in range(25)
        ]
        bob.page.evaluate(TYPE_AND_SEND_ALL, texts)
        expect(alice.messages.last.locator(".content")).to_have_text(texts[-1])
        alice.page.locator("#messages").hover()
        alice.page.mouse.wheel(0, -400)
        bob.say("one below")
        expect(alice.page.locator("#jump")).to_be_visible()
        bob.composer.press_sequentially("typing")
        expect(alice.typing).to_have_text("bob@example.com is typing…")
        return alice, bob, relay

    return build


def offline_with_pending(alice, relay) -> None:
    """Cuts alice off, and she writes on: "Reconnecting…", a pending message."""
    relay.cut()
    expect(alice.status).to_have_text("Reconnecting…")
    alice.composer.fill("waiting to be sent")
    alice.composer.press("Enter")
    expect(alice.pending).to_have_count(1)


def test_axe_finds_nothing_serious_before_joining(people, axe_violations):
    """The join form light, dark and on a phone; then the same with the
    refusal shown by the field (one page, its looks switched)."""
    person = people()
    page = person.page
    desktop = page.viewport_size
    expect(page.locator("#join-form")).to_be_visible()
    for refused in (False, True):
        if refused:
            page.locator("#email").fill("nobody@localhost")
            page.locator("#email").press("Enter")
            expect(page.locator("#join-error")).to_be_visible()
        for color_scheme, viewport in (("light", desktop), ("dark", desktop), ("light", PHONE)):
            page.emulate_media(color_scheme=color_scheme)
            page.set_viewport_size(viewport)
            after_layout(page)
            assert axe_violations(page) == [], (color_scheme, viewport, refused)


@restarts
def test_a_conversation_with_everything_in_it(chat_with_everything, axe_violations, subtests):
    """One build of ``chat_with_everything`` (it restarts the server), seen
    light, dark and on a phone, online and then offline with a message
    pending: axe finds nothing serious in any; every control has a name and
    is reachable by keyboard. Each check is a subtest: one failing does not
    hide the others."""
    alice, bob, relay = chat_with_everything()
    page = alice.page
    desktop = page.viewport_size

    def seen(color_scheme: str = "light", viewport: dict | None = None) -> None:
        page.emulate_media(color_scheme=color_scheme)
        page.set_viewport_size(viewport or desktop)
        after_layout(page)

    def bob_types_on() -> None:
        # The typing line goes 5 s after the last `typing`: keep it shown.
        bob.composer.press_sequentially(".")
        expect(alice.typing).to_have_text("bob@example.com is typing…")

    with subtests.test("every control has a name"):
        every_control_has_a_name(page)
    for color_scheme, viewport in (("light", None), ("dark", None), ("light", PHONE)):
        with subtests.test("axe, online", color_scheme=color_scheme, phone=viewport is not None):
            seen(color_scheme, viewport)
            bob_types_on()
            assert axe_violations(page) == []
    seen()
    with subtests.test("every control is reachable by keyboard"):
        every_control_is_reachable_by_keyboard(alice)

    offline_with_pending(alice, relay)
    for color_scheme, viewport in (("light", None), ("dark", None), ("light", PHONE)):
        with subtests.test("axe, offline", color_scheme=color_scheme, phone=viewport is not None):
            seen(color_scheme, viewport)
            assert axe_violations(page) == []
    with subtests.test("axe, phone with the panel open"):
        seen("light", PHONE)
        page.locator("#people-toggle").click()
        expect(page.locator("#sidebar")).to_be_visible()
        assert axe_violations(page) == []


def test_the_message_list_is_a_polite_live_region(people):
    alice = people("alice@example.com")
    messages = alice.page.locator("#messages")
    expect(messages).to_have_attribute("aria-live", "polite")
    expect(messages).to_have_accessible_name("Messages")
    expect(alice.status).to_have_attribute("role", "status")


def every_control_has_a_name(page) -> None:
    for role, name in (
        ("button", "Notify me"),
        ("button", "Leave"),
        ("button", re.compile("^Jump to latest")),
        ("button", "Send"),
        ("button", "Go"),
        ("textbox", "Message"),
        ("textbox", "Go to room"),
        ("link", "https://example.com/0"),
    ):
        expect(page.get_by_role(role, name=name).first).to_be_visible()
    unnamed = page.evaluate("""() => [...document.querySelectorAll('button, input, textarea, a[href]')]
      .filter(el => el.offsetParent !== null)
      .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                    && !el.textContent.trim())
      .map(el => el.outerHTML)""")
    assert unnamed == []


def tab_through(page, stops: int = 40) -> list[str]:
    """Presses Tab from the top of the page; what got focus, in order."""
    # A click in the header's corner: Tab goes on from there.
    page.mouse.click(1, 1)
    seen = []
    for _ in range(stops):
        page.keyboard.press("Tab")
        seen.append(
            page.evaluate("""() => {
          const el = document.activeElement;
          return el.id || (el.tagName === 'A' ? 'link:' + el.textContent : el.tagName);
        }""")
        )
    return seen


def every_control_is_reachable_by_keyboard(alice) -> None:
    # Each message has its reaction button (and one's own its menu) on the way.
    seen = tab_through(alice.page, 100)
    # In the order they are on screen: the header, the conversation (with
    # its links and each message's buttons), the composer, then the panel.
    order = ["notify", "leave", "messages", "link:https://example.com/0", "message", "room-input"]
    assert [stop for stop in seen if stop in order][: len(order)] == order, seen
    assert seen[seen.index("message") + 1] == "BUTTON"  # Send
    assert seen[seen.index("room-input") + 1] == "BUTTON"  # Go
    # Tabbing to the links scrolled the newest into view; scrolled up again,
    # the jump button is the stop before the composer.
    alice.page.locator("#messages").focus()
    alice.page.keyboard.press("Home")
    expect(alice.page.locator("#jump")).to_be_visible()
    alice.composer.focus()
    alice.page.keyboard.press("Shift+Tab")
    expect(alice.page.locator("#jump")).to_be_focused()
    # Writing a message without the mouse.
    alice.composer.focus()
    alice.page.keyboard.type("typed with the keyboard only")
    alice.page.keyboard.press("Enter")
    alice.sees("alice@example.com", "typed with the keyboard only", mine=True)
    # Acknowledged before the cut that follows: the one pending message
    # then is the one written offline.
    expect(alice.message("typed with the keyboard only")).to_have_attribute(
        "data-id", re.compile(r"^[0-9]+$")
    )


def test_the_panel_by_keyboard_on_a_phone(people):
    alice = people("alice@example.com", viewport=PHONE)
    seen = tab_through(alice.page, 8)
    assert "people-toggle" in seen and "room-input" not in seen  # folded: not in the way
    assert "search-input" not in seen
    alice.page.locator("#people-toggle").focus()
    alice.page.keyboard.press("Enter")
    expect(alice.page.locator("#sidebar")).to_be_visible()
    alice.page.keyboard.press("Tab")
    expect(alice.page.locator("#search-input")).to_be_focused()  # the panel's first field
    alice.page.locator("#room-input").focus()
    alice.page.keyboard.press("Escape")
    expect(alice.page.locator("#sidebar")).to_be_hidden()
    expect(alice.page.locator("#people-toggle")).to_be_focused()


def test_joining_by_keyboard(people):
    alice = people()
    # The address field is early in the tab order, the join button after it.
    seen = tab_through(alice.page, 6)
    assert seen[seen.index("email") + 1] == "BUTTON"
    alice.page.locator("#email").focus()
    alice.page.keyboard.type("alice@example.com")
    alice.page.keyboard.press("Enter")
    expect(alice.page.locator("#chat")).to_be_visible()
    expect(alice.composer).to_be_focused()
